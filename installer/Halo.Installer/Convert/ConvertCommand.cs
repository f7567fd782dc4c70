using System.CommandLine;
using Halo.Core.Formats;
using Halo.Installer.Models;

namespace Halo.Installer.Convert;

/// <summary><c>halo convert INPUT --out FILE.h1b</c> (DESIGN.md sections 3 and 4): see <see cref="ModelConverter"/>.</summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("INPUT") { Description = "A GGUF file, a .h1b file or a Hugging Face safetensors directory" };
        var output = new Option<string>("--out") { Description = "The .h1b file to write", Required = true };
        var checkTokens = new Option<int>("--check-tokens")
        {
            Description = "Greedy tokens the input and the output must agree on (0 skips the engine check)",
            DefaultValueFactory = _ => 8,
        };
        var threads = new Option<int>("--threads") { Description = "CPU threads for the engine check", DefaultValueFactory = _ => Environment.ProcessorCount };
        var command = new Command("convert", "Convert a GGUF file or safetensors directory to .h1b, verified by reading back and by greedy tokens")
        {
            input, output, checkTokens, threads,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(checkTokens) < 0 || parse.GetValue(threads) < 1)
            {
                Console.Error.WriteLine("halo convert: --check-tokens must be >= 0 and --threads >= 1");
                return Cli.UsageError;
            }

            var options = new ConvertOptions { CheckTokens = parse.GetValue(checkTokens), Threads = parse.GetValue(threads) };
            try
            {
                ConvertResult result = await ProgressView.RunAsync(
                    (progress, log) => Task.Run(() => ModelConverter.Convert(parse.GetValue(input)!, parse.GetValue(output)!, options, progress, log, ct), ct),
                    writing: "writing");
                string tokens = result.Tokens is null ? "greedy-token check skipped" : $"greedy tokens identical [{string.Join(", ", result.Tokens)}]";
                Console.Out.WriteLine(
                    $"wrote {result.Output}: {ProgressView.Bytes(result.Size)} from {result.SourceFormat} in {result.WriteTime.TotalSeconds:0.0}s; "
                    + $"verified in {result.VerifyTime.TotalSeconds:0.0}s: {result.Tensors} tensors ({ProgressView.Bytes(result.TensorBytes)}) bit-identical, {tokens}");
                return Cli.Ok;
            }
            catch (Exception ex) when (ex is InvalidModelException or ConversionFailedException or IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"halo convert: {ex.Message}");
                return Cli.Failure;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Console.Error.WriteLine("halo convert: interrupted; nothing was written under the output name");
                return Cli.Failure;
            }
        });
        return command;
    }
}
