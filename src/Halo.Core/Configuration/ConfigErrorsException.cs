namespace Halo.Core.Configuration;

/// <summary>A configuration that cannot be used, with every problem found (not just the first).</summary>
public sealed class ConfigErrorsException : Exception
{
    public ConfigErrorsException(IReadOnlyList<string> errors)
        : base("invalid configuration:" + Environment.NewLine + "  " + string.Join(Environment.NewLine + "  ", errors))
    {
        Errors = errors;
    }

    public IReadOnlyList<string> Errors { get; }
}
