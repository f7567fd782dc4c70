using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Halo.Core.Chat;
using Halo.Core.Tokenization;
using Halo.Engine.Backends;
using Halo.Engine.Generation;
using Halo.Engine.Models;
using Halo.Engine.Sampling;

namespace Halo.Installer.Run;

/// <summary>
/// `halo run`: one generation from a prompt or token ids (DESIGN.md section 4). Text streams to stdout as it is
/// generated; --json prints one object at the end instead; --dump-logits writes the first generated
/// position's logits as little-endian float32.
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var engine = new EngineOptions();
        var prompt = new Option<string?>("--prompt") { Description = "Prompt text (tokenized with the model's tokenizer)" };
        var tokens = new Option<string?>("--tokens") { Description = "Prompt as comma-separated token ids, used as given" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens to generate", DefaultValueFactory = _ => 128 };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature; 0 is greedy", DefaultValueFactory = _ => 0.8f };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens (0 = off)", DefaultValueFactory = _ => 40 };
        var topP = new Option<float>("--top-p") { Description = "Keep the smallest set with this probability mass (1 = off)", DefaultValueFactory = _ => 0.95f };
        var seed = new Option<ulong?>("--seed") { Description = "Random seed for sampling (default: random)" };
        var noBos = new Option<bool>("--no-bos") { Description = "Do not add the BOS token to --prompt" };
        var chat = new Option<bool>("--chat") { Description = "Wrap --prompt in the model's chat template as one user turn" };
        var dumpLogits = new Option<string?>("--dump-logits") { Description = "Write the first generated position's logits (float32 LE) to FILE" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object with tokens, text, top logits and timings" };

        var command = new Command("run", "Generate text from a model file");
        engine.AddTo(command);
        foreach (Option o in (Option[])[prompt, tokens, maxTokens, temperature, topK, topP, seed, noBos, chat, dumpLogits, json])
        {
            command.Options.Add(o);
        }

        command.Validators.Add(r =>
        {
            bool hasPrompt = r.GetValue(prompt) is not null, hasTokens = r.GetValue(tokens) is not null;
            if (hasPrompt == hasTokens)
            {
                r.AddError("give exactly one of --prompt or --tokens");
            }

            if (hasTokens && r.GetValue(chat))
            {
                r.AddError("--chat needs --prompt");
            }
        });
        maxTokens.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1)
            {
                r.AddError("--max-tokens must be at least 1");
            }
        });

        command.SetAction(parse =>
        {
            int[]? ids = null;
            if (parse.GetValue(tokens) is { } list && !TryParseIds(list, out ids))
            {
                Console.Error.WriteLine("halo run: --tokens must be comma-separated non-negative integers, e.g. 1,2,3");
                return Cli.UsageError;
            }

            var sampling = new SamplingParams
            {
                Temperature = parse.GetValue(temperature),
                TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP),
                MinP = 0f,
                Seed = parse.GetValue(seed),
            };
            try
            {
                Sampler.Validate(sampling);
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"halo run: {e.Message}");
                return Cli.UsageError;
            }

            string path = parse.GetValue(engine.Model)!;
            using LoadedModel? model = EngineOptions.TryLoad("run", path, engine.BackendOptions(parse));
            if (model is null)
            {
                return Cli.Failure;
            }

            return Execute(model, path, ids, parse.GetValue(prompt), parse.GetValue(chat), parse.GetValue(noBos), parse.GetValue(maxTokens),
                sampling, parse.GetValue(dumpLogits), parse.GetValue(json));
        });
        return command;
    }

    private static int Execute(LoadedModel model, string path, int[]? ids, string? prompt, bool chat, bool noBos, int maxTokens,
        SamplingParams sampling, string? dumpLogits, bool json)
    {
        BpeTokenizer? tokenizer = model.Tokenizer;
        var stopTokens = new HashSet<int>();
        if (ids is null)
        {
            if (tokenizer is null)
            {
                Console.Error.WriteLine($"halo run: {path} carries no tokenizer; pass the prompt as --tokens");
                return Cli.Failure;
            }

            if (chat)
            {
                var template = ChatTemplate.FromModel(tokenizer.Model);
                ids = template.Encode(tokenizer, [new ChatMessage("user", prompt!)], addGenerationPrompt: true);
                stopTokens.UnionWith(template.StopTokenIds);
            }
            else
            {
                ids = tokenizer.Encode(prompt, addSpecial: !noBos);
            }
        }

        if (tokenizer is not null)
        {
            foreach (int id in tokenizer.EndOfGenerationIds)
            {
                stopTokens.Add(id);
            }
        }

        if (ids.Length == 0)
        {
            Console.Error.WriteLine("halo run: the prompt has no tokens");
            return Cli.UsageError;
        }

        var options = new GenerationOptions
        {
            MaxTokens = maxTokens,
            Sampling = sampling,
            StopTokens = stopTokens,
            KeepFirstLogits = true,
            Decode = tokenizer is null ? null : generated => tokenizer.Decode(generated.ToArray()),
        };

        var streamed = new StreamingText(tokenizer, json);
        GenerationResult result;
        try
        {
            result = new Generator(model.Backend).Generate(ids, options, streamed.Add);
        }
        catch (Exception e) when (e is ContextOverflowException or ArgumentException)
        {
            Console.Error.WriteLine($"halo run: {e.Message}");
            return Cli.Failure;
        }

        streamed.Finish();
        if (dumpLogits is not null && result.FirstLogits is { } logits)
        {
            try
            {
                WriteLogits(dumpLogits, logits);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"halo run: cannot write {dumpLogits}: {e.Message}");
                return Cli.Failure;
            }
        }

        if (json)
        {
            Console.Out.WriteLine(Json(model, path, ids, result));
        }
        else
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[{result.FinishReason.ToString().ToLowerInvariant()}] prompt {ids.Length} tokens, {PerSecond(ids.Length, result.PrefillTime):F1} tok/s; generated {result.Tokens.Count} tokens, {PerSecond(result.DecodeSteps, result.DecodeTime):F1} tok/s; load {model.LoadTime.TotalMilliseconds:F0} ms ({model.Backend.Info.Name}: {model.Backend.Info.Device})"));
        }

        return Cli.Ok;
    }

    private static bool TryParseIds(string text, out int[] ids)
    {
        string[] parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out ids[i]))
            {
                return false;
            }
        }

        return parts.Length > 0;
    }

    private static double PerSecond(int count, TimeSpan time) => time.TotalSeconds > 0 ? count / time.TotalSeconds : 0;

    private static void WriteLogits(string file, float[] logits)
    {
        var bytes = new byte[logits.Length * 4];
        for (int i = 0; i < logits.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), logits[i]);
        }

        File.WriteAllBytes(file, bytes);
    }

    private static string Json(LoadedModel model, string path, int[] prompt, GenerationResult r)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("model", path);
            w.WriteString("backend", model.Backend.Info.Name);
            w.WriteString("device", model.Backend.Info.Device);
            w.WriteStartArray("prompt_tokens");
            foreach (int id in prompt)
            {
                w.WriteNumberValue(id);
            }

            w.WriteEndArray();
            w.WriteStartArray("generated_tokens");
            foreach (int id in r.Tokens)
            {
                w.WriteNumberValue(id);
            }

            w.WriteEndArray();
            w.WriteString("text", r.Text ?? "");
            w.WriteString("finish_reason", r.FinishReason == FinishReason.Stop ? "stop" : "length");
            w.WriteStartObject("first_position");
            w.WriteStartArray("top");
            if (r.FirstLogits is { } logits)
            {
                foreach ((int id, float logit, double prob) in Top(logits, 10))
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", id);
                    w.WriteNumber("logit", logit);
                    w.WriteNumber("prob", prob);
                    w.WriteEndObject();
                }
            }

            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteStartObject("timings");
            w.WriteNumber("load_ms", Math.Round(model.LoadTime.TotalMilliseconds, 1));
            w.WriteNumber("prefill_tokens_per_s", Math.Round(PerSecond(prompt.Length, r.PrefillTime), 2));
            w.WriteNumber("decode_tokens_per_s", Math.Round(PerSecond(r.DecodeSteps, r.DecodeTime), 2));
            w.WriteEndObject();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>The k highest logits with their softmax probability (temperature 1, whole vocabulary).</summary>
    internal static List<(int Id, float Logit, double Prob)> Top(float[] logits, int k)
    {
        float max = logits.Max();
        double sum = 0;
        foreach (float l in logits)
        {
            sum += Math.Exp(l - max);
        }

        var order = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).Take(k);
        var top = new List<(int, float, double)>();
        foreach (int i in order)
        {
            top.Add((i, logits[i], Math.Exp(logits[i] - max) / sum));
        }

        return top;
    }

    /// <summary>Writes generated text to stdout as whole characters arrive (nothing in --json mode).</summary>
    private sealed class StreamingText(BpeTokenizer? tokenizer, bool quiet)
    {
        private readonly StreamingDetokenizer? _detokenizer = tokenizer is null ? null : new StreamingDetokenizer(tokenizer);
        private readonly StringBuilder _text = new();

        public void Add(int token)
        {
            if (quiet)
            {
                return;
            }

            if (_detokenizer is null)
            {
                Console.Out.Write(string.Create(CultureInfo.InvariantCulture, $"{token} "));
                return;
            }

            _text.Clear();
            _detokenizer.Append(token, _text);
            Console.Out.Write(_text);
            Console.Out.Flush();
        }

        public void Finish()
        {
            if (!quiet)
            {
                Console.Out.WriteLine();
            }
        }
    }
}
