using System.Text.Json;

namespace Halo.Server.OpenAi;

/// <summary>A request answered with an OpenAI error body and this status instead of a result.</summary>
internal class ApiException(int status, string message, string? param = null, string? code = null) : Exception(message)
{
    public int Status { get; } = status;

    public string? Param { get; } = param;

    public string? Code { get; } = code;

    /// <summary>Seconds for a Retry-After header (429, 503).</summary>
    public int? RetryAfterSeconds { get; init; }
}

/// <summary>A request that cannot be served as sent: answered 400 with the JSON path of the fault
/// (<c>$.messages[0].content: expected a string</c>).</summary>
internal sealed class InvalidRequestException(string message, string? param = null, string? code = null)
    : ApiException(400, message, param, code)
{
}

/// <summary>
/// Typed, path-aware reads of a JSON request object. Every read names the field's JSON path in its error, so
/// a client learns exactly which field is wrong and what was expected. Unknown fields are ignored (clients send
/// many); known fields of the wrong type or range are errors; JSON null counts as absent.
/// </summary>
internal readonly struct RequestJson
{
    private readonly JsonElement _element;

    public RequestJson(JsonElement element, string path)
    {
        _element = element;
        Path = path;
    }

    public string Path { get; }

    public JsonElement Element => _element;

    /// <summary>Parses a body; malformed JSON or a non-object root is a 400 naming where it broke.</summary>
    public static JsonDocument ParseBody(ReadOnlyMemory<byte> body)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            string where = e.LineNumber is { } line ? $" at line {line + 1}, byte {e.BytePositionInLine + 1}" : "";
            throw new InvalidRequestException($"$: the body is not valid JSON{where}");
        }

        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            string kind = Describe(document.RootElement.ValueKind);
            document.Dispose();
            throw new InvalidRequestException($"$: expected a JSON object, got {kind}");
        }

        return document;
    }

    public static RequestJson Root(JsonDocument document) => new(document.RootElement, "$");

    public bool Has(string name) =>
        _element.TryGetProperty(name, out JsonElement value) && value.ValueKind != JsonValueKind.Null;

    public string Child(string name) => Path + "." + name;

    public string? String(string name)
    {
        if (!TryGet(name, out JsonElement value))
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String ? Text(value, Child(name)) : throw Expected(name, "a string", value);
    }

    public string RequiredString(string name) => String(name) ?? throw Missing(name, "a string");

    public bool? Bool(string name)
    {
        if (!TryGet(name, out JsonElement value))
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Expected(name, "true or false", value),
        };
    }

    public long? Integer(string name, long min, long max)
    {
        if (!TryGet(name, out JsonElement value))
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number)
        {
            throw Expected(name, "an integer", value);
        }

        if (!value.TryGetInt64(out long result))
        {
            // Whole numbers too large for 64 bits, or fractions.
            if (value.TryGetDouble(out double d) && Math.Floor(d) == d)
            {
                result = d > 0 ? long.MaxValue : long.MinValue;
            }
            else
            {
                throw Expected(name, "an integer", value);
            }
        }

        if (result < min || result > max)
        {
            throw new InvalidRequestException($"{Child(name)}: {value.GetRawText()} is out of range (expected {min} to {max})", ParamOf(Child(name)));
        }

        return result;
    }

    public double? Number(string name, double min, double max)
    {
        if (!TryGet(name, out JsonElement value))
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double result))
        {
            throw Expected(name, "a number", value);
        }

        if (result < min || result > max)
        {
            throw new InvalidRequestException($"{Child(name)}: {value.GetRawText()} is out of range (expected {min} to {max})", ParamOf(Child(name)));
        }

        return result;
    }

    public RequestJson? Object(string name)
    {
        if (!TryGet(name, out JsonElement value))
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Object ? new RequestJson(value, Child(name)) : throw Expected(name, "an object", value);
    }

    /// <summary>The elements of an array field, each with its own path (<c>$.messages[2]</c>).</summary>
    public List<RequestJson>? Array(string name)
    {
        if (!TryGet(name, out JsonElement value))
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            throw Expected(name, "an array", value);
        }

        var items = new List<RequestJson>(value.GetArrayLength());
        int i = 0;
        foreach (JsonElement item in value.EnumerateArray())
        {
            items.Add(new RequestJson(item, $"{Child(name)}[{i++}]"));
        }

        return items;
    }

    /// <summary>This element as a string (for array items and union-typed fields).</summary>
    public string AsString(string expected = "a string") =>
        _element.ValueKind == JsonValueKind.String ? Text(_element, Path) : throw new InvalidRequestException($"{Path}: expected {expected}, got {Describe(_element.ValueKind)}", ParamOf(Path));

    /// <summary>A string value's text. The parser checks structure only: invalid UTF-8 or an escaped lone
    /// surrogate inside a string surfaces here, and is the client's fault (400), not ours.</summary>
    public static string Text(JsonElement value, string path)
    {
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw new InvalidRequestException($"{path}: the string is not valid Unicode (invalid UTF-8 or a lone surrogate)", ParamOf(path));
        }
    }

    public bool TryGet(string name, out JsonElement value) =>
        _element.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    public InvalidRequestException Expected(string name, string what, JsonElement got) =>
        new($"{Child(name)}: expected {what}, got {Describe(got.ValueKind)}", ParamOf(Child(name)));

    public InvalidRequestException Missing(string name, string what) =>
        new($"{Child(name)}: required field missing (expected {what})", ParamOf(Child(name)));

    public InvalidRequestException Invalid(string name, string problem) =>
        new($"{Child(name)}: {problem}", ParamOf(Child(name)));

    /// <summary>OpenAI's <c>param</c> is the field path without the leading <c>$.</c>.</summary>
    public static string ParamOf(string path) => path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path;

    public static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}
