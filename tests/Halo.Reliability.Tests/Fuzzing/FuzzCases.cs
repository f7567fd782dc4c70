using System.Text;
using System.Text.Json.Nodes;

namespace Halo.Reliability.Tests.Fuzzing;

/// <summary>One request the fuzzer sends: method, path, body bytes (null: no body) and a short label of what was
/// done to it (for the failure message and the per-kind counts).</summary>
internal sealed record FuzzCase(int Index, string Kind, HttpMethod Method, string Path, byte[]? Body)
{
    public override string ToString()
    {
        string body = Body is null ? "(no body)" : Encoding.UTF8.GetString(Body, 0, Math.Min(Body.Length, 300));
        return $"#{Index} {Kind}: {Method} {Path} {body}";
    }
}

/// <summary>
/// Deterministic request generator: from a seed, mutations of a valid request to every endpoint (a field set to
/// a wrong type or an absurd number, removed, or joined by unknown fields; the text truncated, a byte flipped,
/// invalid UTF-8 spliced in; deep nesting; thousands of stop strings), plus wrong methods and paths. Generating
/// requests stay tiny: max_tokens is 1 or 2 unless the mutation is of max_tokens itself (the daemon under test
/// runs with a short context, which bounds those).
/// </summary>
internal static class FuzzCases
{
    private static readonly (string Path, string Body)[] Endpoints =
    [
        ("v1/chat/completions", """{"model":"tiny","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"max_tokens":1,"temperature":0}"""),
        ("v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_tokens":2,"stream":true,"stream_options":{"include_usage":true},"stop":["\n"],"seed":3,"top_p":0.9,"top_k":5,"logprobs":true,"top_logprobs":2}"""),
        ("v1/completions", """{"model":"tiny","prompt":"hi","max_tokens":1,"temperature":0.5,"presence_penalty":0.1,"frequency_penalty":0.1}"""),
        ("v1/completions", """{"model":"tiny","prompt":[1,2,3],"max_tokens":2,"stream":true,"echo":true,"logprobs":1,"stop":"x"}"""),
        ("tokenize", """{"model":"tiny","content":"hello world","add_special":false}"""),
        ("tokenize", """{"model":"tiny","messages":[{"role":"user","content":"hello"}]}"""),
        ("detokenize", """{"model":"tiny","tokens":[104,105,106]}"""),
        ("mcp", """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"fuzz","version":"1"}}}"""),
        ("mcp", """{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"""),
        ("mcp", """{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"generate","arguments":{"prompt":"hi","max_tokens":1}}}"""),
        ("mcp", """{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"halo://model"}}"""),
    ];

    private static readonly string[] GetPaths = ["v1/models", "health", "livez", "metrics"];

    /// <summary>Values that are wrong somewhere: other types, limits of every integer width, NaN-like text.</summary>
    private static readonly string[] OddValues =
    [
        "null", "true", "false", "0", "-0", "1", "-1", "2", "0.5", "-0.5", "3.4028235e38", "1e308", "-1e308", "1e309",
        "1e-400", "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807",
        "9223372036854775808", "-9223372036854775809", "18446744073709551616", "123456789012345678901234567890",
        "1.0", "1e2", "100000000", "\"\"", "\"1\"", "\"NaN\"", "\"Infinity\"", "\"tiny\"", "\"\\u0000\"",
        "\"\\ud800\"", "\"\\udfff\\ud800\"", "\"<|eot_id|>\"", "\"<|begin_of_text|>\"", "[]", "[1]", "[\"a\"]",
        "[null]", "[[]]", "{}", "{\"a\":1}", "{\"role\":\"user\",\"content\":\"hi\"}", "[{}]", "[[1,2]]",
    ];

    private static readonly string[] NumericFields =
    [
        "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "n", "seed",
        "presence_penalty", "frequency_penalty", "repetition_penalty", "logprobs", "top_logprobs",
    ];

    private static readonly string[] UnknownFields =
    [
        "tools", "tool_choice", "response_format", "user", "logit_bias", "functions", "parallel_tool_calls",
        "__proto__", "constructor", "", " ", "model ", "MAX_TOKENS", "\u00e9", "\\u0000",
    ];

    public static IEnumerable<FuzzCase> Generate(int seed, int count)
    {
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            yield return Make(i, random);
        }
    }

    private static FuzzCase Make(int index, Random random)
    {
        (string path, string body) = Endpoints[random.Next(Endpoints.Length)];
        int pick = random.Next(100);
        return pick switch
        {
            < 30 => WrongValue(index, random, path, body),
            < 42 => AbsurdNumber(index, random, path, body),
            < 50 => Removed(index, random, path, body),
            < 56 => Unknown(index, random, path, body),
            < 66 => Truncated(index, random, path, body),
            < 74 => ByteFlip(index, random, path, body),
            < 80 => InvalidUtf8(index, random, path, body),
            < 84 => DeepNesting(index, random, path, body),
            < 88 => ManyStops(index, random, path, body),
            < 92 => NotJson(index, random, path),
            < 96 => WrongMethod(index, random, path, body),
            _ => WrongPath(index, random, body),
        };
    }

    private static FuzzCase WrongValue(int index, Random random, string path, string body)
    {
        JsonNode root = JsonNode.Parse(body)!;
        List<(JsonNode Parent, object Key)> slots = Slots(root);
        (JsonNode parent, object key) = slots[random.Next(slots.Count)];
        string value = OddValues[random.Next(OddValues.Length)];
        Set(parent, key, Placeholder);
        return Post(index, "wrong-value", path, WithRaw(root, value));
    }

    private static FuzzCase AbsurdNumber(int index, Random random, string path, string body)
    {
        JsonNode root = JsonNode.Parse(body)!;
        string field = NumericFields[random.Next(NumericFields.Length)];
        string[] numbers = ["0", "-1", "-100", "1e9", "-1e9", "9223372036854775807", "-9223372036854775808", "1e308", "0.000001", "2.0000001", "65", "64", "63", "100000"];
        string number = numbers[random.Next(numbers.Length)];
        string json = root.ToJsonString();
        json = json[..^1] + $",\"{field}\":{number}}}";   // a duplicate key when the field exists: also a case
        return Post(index, "absurd-number", path, json);
    }

    private static FuzzCase Removed(int index, Random random, string path, string body)
    {
        JsonNode root = JsonNode.Parse(body)!;
        List<(JsonNode Parent, object Key)> slots = Slots(root);
        (JsonNode parent, object key) = slots[random.Next(slots.Count)];
        if (parent is JsonObject o)
        {
            o.Remove((string)key);
        }
        else
        {
            ((JsonArray)parent).RemoveAt((int)key);
        }

        return Post(index, "removed", path, root.ToJsonString());
    }

    private static FuzzCase Unknown(int index, Random random, string path, string body)
    {
        JsonNode root = JsonNode.Parse(body)!;
        var obj = (JsonObject)root;
        string name = UnknownFields[random.Next(UnknownFields.Length)];
        obj[name] = Placeholder;
        return Post(index, "unknown-field", path, WithRaw(root, OddValues[random.Next(OddValues.Length)]));
    }

    private static FuzzCase Truncated(int index, Random random, string path, string body)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(body);
        return new FuzzCase(index, "truncated", HttpMethod.Post, path, bytes[..random.Next(bytes.Length)]);
    }

    private static FuzzCase ByteFlip(int index, Random random, string path, string body)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(body);
        int flips = 1 + random.Next(3);
        for (int f = 0; f < flips; f++)
        {
            bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
        }

        return new FuzzCase(index, "byte-flip", HttpMethod.Post, path, bytes);
    }

    /// <summary>Raw invalid UTF-8 (a lone continuation byte, an overlong slash, an encoded surrogate, 0xFF,
    /// a cut sequence) spliced inside a string value.</summary>
    private static FuzzCase InvalidUtf8(int index, Random random, string path, string body)
    {
        byte[][] bad = [[0x80], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xFF], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80], [0xC3, 0x28], [0x00]];
        byte[] bytes = Encoding.UTF8.GetBytes(body);
        var quotes = new List<int>();
        for (int i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == (byte)'"')
            {
                quotes.Add(i);
            }
        }

        int at = quotes[random.Next(quotes.Count)] + 1;
        byte[] insert = bad[random.Next(bad.Length)];
        return new FuzzCase(index, "invalid-utf8", HttpMethod.Post, path, [.. bytes[..at], .. insert, .. bytes[at..]]);
    }

    /// <summary>Arrays or objects nested 65 to 200,000 deep, in place of a field or as the whole body.</summary>
    private static FuzzCase DeepNesting(int index, Random random, string path, string body)
    {
        int[] depths = [65, 100, 1000, 10_000, 200_000];
        int depth = depths[random.Next(depths.Length)];
        bool objects = random.Next(2) == 0;
        var nest = new StringBuilder(depth * 6);
        for (int d = 0; d < depth; d++)
        {
            nest.Append(objects ? "{\"a\":" : "[");
        }

        nest.Append('1');
        for (int d = 0; d < depth; d++)
        {
            nest.Append(objects ? '}' : ']');
        }

        string json = random.Next(3) == 0 ? nest.ToString() : body[..^1] + ",\"messages\":" + nest + "}";
        return Post(index, "deep-nesting", path, json);
    }

    /// <summary>1 to 20,000 stop strings, some empty, some long, some special-token look-alikes.</summary>
    private static FuzzCase ManyStops(int index, Random random, string path, string body)
    {
        int[] counts = [1, 4, 16, 17, 100, 1000, 5000, 20_000];
        int count = counts[random.Next(counts.Length)];
        var stops = new JsonArray();
        for (int s = 0; s < count; s++)
        {
            stops.Add((s % 7) switch
            {
                0 => "",
                1 => "<|eot_id|>",
                2 => new string('x', 1 + random.Next(2000)),
                _ => "s" + s.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
        }

        JsonNode root = JsonNode.Parse(body)!;
        root["stop"] = stops;
        root["max_tokens"] = 2;
        return Post(index, "many-stops", path, root.ToJsonString());
    }

    private static FuzzCase NotJson(int index, Random random, string path)
    {
        string[] bodies = ["", " ", "null", "[]", "\"x\"", "1", "{", "}", "{}", "{\"model\":}", "model=tiny&prompt=hi", "<xml/>", "{\"a\":1}{\"b\":2}", "\uFEFF{}", "{'model':'tiny'}", "NaN", "{\"model\":\"tiny\",}"];
        return new FuzzCase(index, "not-json", HttpMethod.Post, path, Encoding.UTF8.GetBytes(bodies[random.Next(bodies.Length)]));
    }

    private static FuzzCase WrongMethod(int index, Random random, string path, string body)
    {
        HttpMethod[] methods = [HttpMethod.Get, HttpMethod.Put, HttpMethod.Delete, HttpMethod.Patch, HttpMethod.Options, HttpMethod.Head];
        HttpMethod method = methods[random.Next(methods.Length)];
        if (random.Next(2) == 0)
        {
            return new FuzzCase(index, "wrong-method", HttpMethod.Post, GetPaths[random.Next(GetPaths.Length)], Encoding.UTF8.GetBytes(body));
        }

        return new FuzzCase(index, "wrong-method", method, path, method == HttpMethod.Get || method == HttpMethod.Head ? null : Encoding.UTF8.GetBytes(body));
    }

    private static FuzzCase WrongPath(int index, Random random, string body)
    {
        string[] paths = ["", "v1", "v1/", "v1/chat", "v1/chat/completions/", "v1/chat/completions/x", "V1/CHAT/COMPLETIONS", "v1//completions",
            "v1/completions?stream=true", "v1/%2e%2e/health", "../etc/passwd", "v1/models/tiny", "v1/embeddings", "mcp", "metrics?x=%00",
            "health?" + new string('a', 4000), "%ff%fe", "v1/chat/completions%00"];
        return new FuzzCase(index, "wrong-path", random.Next(2) == 0 ? HttpMethod.Get : HttpMethod.Post, paths[random.Next(paths.Length)], Encoding.UTF8.GetBytes(body));
    }

    /// <summary>Stands where a raw value goes: JsonNode cannot hold some of them (lone surrogates).</summary>
    private const string Placeholder = "@@fuzz@@";

    private static string WithRaw(JsonNode root, string rawValue) =>
        root.ToJsonString().Replace("\"" + Placeholder + "\"", rawValue, StringComparison.Ordinal);

    private static FuzzCase Post(int index, string kind, string path, string json) =>
        new(index, kind, HttpMethod.Post, path, Encoding.UTF8.GetBytes(json));

    /// <summary>Every (container, key) in the tree: each is a place a mutation can hit.</summary>
    private static List<(JsonNode Parent, object Key)> Slots(JsonNode root)
    {
        var slots = new List<(JsonNode, object)>();
        Walk(root);
        return slots;

        void Walk(JsonNode node)
        {
            if (node is JsonObject o)
            {
                foreach ((string key, JsonNode? child) in o)
                {
                    slots.Add((o, key));
                    if (child is not null)
                    {
                        Walk(child);
                    }
                }
            }
            else if (node is JsonArray a)
            {
                for (int i = 0; i < a.Count; i++)
                {
                    slots.Add((a, i));
                    if (a[i] is { } child)
                    {
                        Walk(child);
                    }
                }
            }
        }
    }

    private static void Set(JsonNode parent, object key, JsonNode? value)
    {
        if (parent is JsonObject o)
        {
            o[(string)key] = value;
        }
        else
        {
            ((JsonArray)parent)[(int)key] = value;
        }
    }
}
