using System.CommandLine;
using System.Diagnostics;
using Halo.Core.Formats;
using Halo.Core.Models;
using Spectre.Console;

namespace Halo.Installer.Models;

/// <summary>
/// <c>halo models synth</c>: a random-weight BitNet b1.58 GGUF with real shapes (DESIGN.md section 4), written by
/// <see cref="SyntheticModel"/> through a temporary file, so a full disk or a kill never leaves half a model.
/// </summary>
internal static class SynthCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset")
        {
            Description = "Shapes: tiny (tests), 0.7b (bitnet_b1_58-large), 2b (BitNet b1.58 2B4T)",
            Required = true,
        };
        preset.AcceptOnlyFromAmong([.. SyntheticModelSpec.PresetNames]);
        var type = new Option<string>("--type") { Description = "Ternary weight type", DefaultValueFactory = _ => "tq2_0" };
        type.AcceptOnlyFromAmong("tq2_0", "tq1_0");
        var output = new Option<string>("--out") { Description = "The GGUF file to write", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Random seed (same seed, same bytes)", DefaultValueFactory = _ => 0 };
        var tokenizer = new Option<string>("--tokenizer")
        {
            Description = "'byte' for a small byte-level vocabulary, or a directory with a Hugging Face tokenizer.json",
            DefaultValueFactory = _ => "byte",
        };
        var command = new Command("synth", "Write a random-weight model with real shapes (labelled as random in its metadata)")
        {
            preset, type, output, seed, tokenizer,
        };
        command.SetAction((parse, ct) => ModelsCommand.Guard("synth", () =>
        {
            string tokenizerArg = parse.GetValue(tokenizer)!;
            string? tokenizerDir = tokenizerArg == "byte" ? null : Path.GetFullPath(tokenizerArg);
            if (tokenizerDir is not null && !File.Exists(Path.Combine(tokenizerDir, "tokenizer.json")))
            {
                throw new ModelStoreException($"--tokenizer {tokenizerArg}: no tokenizer.json there (or pass 'byte')");
            }

            SyntheticModelSpec spec = SyntheticModelSpec.FromPreset(
                parse.GetValue(preset)!,
                parse.GetValue(type) == "tq1_0" ? GgmlType.TQ1_0 : GgmlType.TQ2_0,
                parse.GetValue(seed),
                tokenizerDir);
            string path = Path.GetFullPath(parse.GetValue(output)!);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);

            var clock = Stopwatch.StartNew();
            ModelConfig config;
            if (ProgressView.Interactive)
            {
                config = AnsiConsole.Status().Start($"writing {Markup.Escape(Path.GetFileName(path))} ({spec.Preset}, {spec.WeightType})", _ => SyntheticModel.Write(spec, path));
            }
            else
            {
                config = SyntheticModel.Write(spec, path);
            }

            long size = new FileInfo(path).Length;
            Console.Out.WriteLine(
                $"wrote {path}: {ProgressView.Bytes(size)} in {clock.Elapsed.TotalSeconds:0.0}s, random weights, preset {spec.Preset}, {spec.WeightType}, "
                + $"{config.LayerCount} layers, hidden {config.HiddenSize}, ffn {config.FeedForwardSize}, heads {config.HeadCount}/{config.KvHeadCount}, "
                + $"vocab {config.VocabSize}, seed {spec.Seed}, tokenizer {(tokenizerDir is null ? "byte" : tokenizerDir)}");
            return Task.FromResult(Cli.Ok);
        }, ct));
        return command;
    }
}
