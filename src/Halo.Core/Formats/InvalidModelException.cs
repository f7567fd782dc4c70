namespace Halo.Core.Formats;

/// <summary>
/// A model file that cannot be used: bad magic or version, truncated, out-of-range offsets, overflowing
/// shapes, unknown tensor types, missing or mis-shaped tensors. The message always names the file and the
/// field at fault so that one line in a log tells the operator what to fix.
/// </summary>
public sealed class InvalidModelException : Exception
{
    public InvalidModelException(string file, string problem)
        : base($"{file}: {problem}")
    {
        File = file;
        Problem = problem;
    }

    public InvalidModelException(string file, string problem, Exception inner)
        : base($"{file}: {problem}", inner)
    {
        File = file;
        Problem = problem;
    }

    public string File { get; }

    public string Problem { get; }
}
