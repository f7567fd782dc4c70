using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Halo.Installer.Bench;

/// <summary>
/// `halo bench --server URL --parallel N`: the same rounds as <see cref="ParallelBench"/>, one stream then N at
/// once, against a running daemon over HTTP: streaming <c>/v1/completions</c> with a prompt of
/// <see cref="ParallelBench.PromptTokens"/> token ids (from <c>/tokenize</c>, so the prompt length does not depend
/// on the tokenizer), <c>ignore_eos</c> (every stream runs to --tg tokens) and per-token <c>logprobs</c> (one SSE
/// event per token, so tokens without text still count).
/// Timestamps are SSE arrivals at this client, so the numbers include tokenization, detokenization, JSON, SSE and
/// the loopback or network hop.
/// </summary>
internal static class ServerBench
{
    public static readonly string[] Metrics =
        ["parallel_tps", "parallel_stream_tps", "parallel_single_tps", "parallel_speedup", "parallel_itl_p50_ms", "parallel_itl_p99_ms"];

    private static readonly string[] Words =
        ["the", "quiet", "machine", "counts", "every", "token", "while", "seven", "streams", "share", "one", "batch", "of", "ternary", "weights", "today"];

    /// <summary>The id of the model the daemon serves.</summary>
    public static async Task<string> ModelIdAsync(HttpClient http)
    {
        using HttpResponseMessage response = await http.GetAsync("v1/models").ConfigureAwait(false);
        string body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new BenchException($"GET /v1/models answered {(int)response.StatusCode}: {Shorten(body)}");
        }

        return JsonNode.Parse(body)?["data"]?[0]?["id"]?.GetValue<string>() ?? "unknown";
    }

    /// <summary>One repetition: warm-up, one stream, then <paramref name="streams"/> at once.</summary>
    public static async Task<JsonObject> RunRepetitionAsync(HttpClient http, int streams, int tokens, int repetition)
    {
        await RoundAsync(http, 1, 4, repetition * 1000).ConfigureAwait(false);
        ParallelBench.Round single = await RoundAsync(http, 1, tokens, repetition * 1000 + 1).ConfigureAwait(false);
        ParallelBench.Round many = await RoundAsync(http, streams, tokens, repetition * 1000 + 2).ConfigureAwait(false);
        return new JsonObject
        {
            ["parallel_tps"] = many.AggregateTps,
            ["parallel_stream_tps"] = many.AggregateTps / streams,
            ["parallel_single_tps"] = single.AggregateTps,
            ["parallel_speedup"] = many.AggregateTps / single.AggregateTps,
            ["parallel_itl_p50_ms"] = many.InterTokenMs(0.50),
            ["parallel_itl_p99_ms"] = many.InterTokenMs(0.99),
        };
    }

    public static HttpClient Client(Uri server, string? apiKey)
    {
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = int.MaxValue })
        {
            BaseAddress = server.AbsoluteUri.EndsWith('/') ? server : new Uri(server.AbsoluteUri + "/"),
            Timeout = TimeSpan.FromMinutes(30),
        };
        if (apiKey is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return http;
    }

    private static async Task<ParallelBench.Round> RoundAsync(HttpClient http, int streams, int tokens, int seed)
    {
        var prompts = new int[streams][];
        for (int s = 0; s < streams; s++)
        {
            prompts[s] = await PromptAsync(http, seed + s).ConfigureAwait(false);
        }

        var arrivals = new List<long>[streams];
        var readers = new Task[streams];
        for (int s = 0; s < streams; s++)
        {
            arrivals[s] = new List<long>(tokens);
            readers[s] = StreamAsync(http, prompts[s], tokens, seed + s, arrivals[s]);
        }

        await Task.WhenAll(readers).ConfigureAwait(false);
        var times = new long[streams][];
        for (int s = 0; s < streams; s++)
        {
            if (arrivals[s].Count != tokens)
            {
                throw new BenchException($"a stream ended after {arrivals[s].Count} of {tokens} tokens (does the server honour ignore_eos and logprobs?)");
            }

            times[s] = [.. arrivals[s]];
        }

        return new ParallelBench.Round(times, times, 0, 0, 0);
    }

    /// <summary>One streaming completion; records the arrival of each token (one per logprobs entry).</summary>
    private static async Task StreamAsync(HttpClient http, int[] prompt, int tokens, int seed, List<long> arrivals)
    {
        var ids = new JsonArray();
        foreach (int id in prompt)
        {
            ids.Add(id);
        }

        var body = new JsonObject
        {
            ["prompt"] = ids,
            ["max_tokens"] = tokens,
            ["stream"] = true,
            ["ignore_eos"] = true,
            ["logprobs"] = 0,
            ["seed"] = seed,
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        using HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            string error = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
            throw new BenchException($"POST /v1/completions answered {(int)response.StatusCode}: {Shorten(error)}");
        }

        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync().ConfigureAwait(false));
        while (await reader.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal))
            {
                continue;
            }

            long now = Stopwatch.GetTimestamp();
            using JsonDocument chunk = JsonDocument.Parse(line.AsMemory(6));
            if (chunk.RootElement.TryGetProperty("choices", out JsonElement choices) && choices.GetArrayLength() > 0
                && choices[0].TryGetProperty("logprobs", out JsonElement logprobs) && logprobs.ValueKind == JsonValueKind.Object)
            {
                int count = logprobs.GetProperty("tokens").GetArrayLength();
                for (int i = 0; i < count; i++)
                {
                    arrivals.Add(now);
                }
            }
        }
    }

    /// <summary>The first <see cref="ParallelBench.PromptTokens"/> token ids of plain words, different per stream.</summary>
    private static async Task<int[]> PromptAsync(HttpClient http, int seed)
    {
        var random = new Random(seed);
        var text = new StringBuilder();
        for (int i = 0; i < 4 * ParallelBench.PromptTokens; i++)
        {
            text.Append(i == 0 ? "" : " ").Append(Words[random.Next(Words.Length)]);
        }

        string body = new JsonObject { ["content"] = text.ToString() }.ToJsonString();
        using HttpResponseMessage response = await http.PostAsync("tokenize", new StringContent(body, Encoding.UTF8, "application/json")).ConfigureAwait(false);
        string answer = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new BenchException($"POST /tokenize answered {(int)response.StatusCode}: {Shorten(answer)}");
        }

        JsonArray tokens = JsonNode.Parse(answer)?["tokens"]?.AsArray() ?? throw new BenchException("POST /tokenize answered no tokens");
        var prompt = new int[Math.Min(ParallelBench.PromptTokens, tokens.Count)];
        for (int i = 0; i < prompt.Length; i++)
        {
            prompt[i] = tokens[i]!.GetValue<int>();
        }

        return prompt;
    }

    private static string Shorten(string text) => text.Length > 300 ? text[..300] + "..." : text;
}

/// <summary>A benchmark that cannot go on; its message is printed as one line.</summary>
internal sealed class BenchException(string message) : Exception(message);
