namespace Halo.Server.Inference;

/// <summary>
/// Finds the first stop string in generated text that arrives piece by piece. Text that might be the start of a
/// stop string is held back until it is known not to be, so a client never sees any part of a stop string.
/// </summary>
internal sealed class StopStringMatcher(IReadOnlyList<string> stops)
{
    private string _pending = "";

    public bool Stopped { get; private set; }

    /// <summary>Adds generated text; returns what can be released now. Sets <see cref="Stopped"/> when a stop
    /// string appeared (the text before it is released, the stop string and all after it dropped).</summary>
    public string Push(string text)
    {
        if (Stopped)
        {
            return "";
        }

        if (stops.Count == 0)
        {
            return text;
        }

        string pending = _pending + text;
        int first = -1;
        foreach (string stop in stops)
        {
            int at = pending.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (first < 0 || at < first))
            {
                first = at;
            }
        }

        if (first >= 0)
        {
            Stopped = true;
            _pending = "";
            return pending[..first];
        }

        int hold = HeldSuffixLength(pending);
        _pending = pending[^hold..];
        return pending[..^hold];
    }

    /// <summary>Releases held text at the end of the generation.</summary>
    public string Flush()
    {
        string rest = _pending;
        _pending = "";
        return Stopped ? "" : rest;
    }

    /// <summary>Length of the longest suffix of <paramref name="text"/> that is a proper prefix of a stop string.</summary>
    private int HeldSuffixLength(string text)
    {
        int longest = 0;
        foreach (string stop in stops)
        {
            for (int length = Math.Min(stop.Length - 1, text.Length); length > longest; length--)
            {
                if (text.AsSpan(text.Length - length).SequenceEqual(stop.AsSpan(0, length)))
                {
                    longest = length;
                    break;
                }
            }
        }

        return longest;
    }
}
