namespace Halo.Installer.Models;

/// <summary>
/// The environment variables of the model store, declared once. Each one only replaces a default; flags
/// (<c>--dir</c>) win over them.
/// </summary>
public static class ModelsEnvironment
{
    /// <summary>Where models live (default <c>/var/lib/halo/models</c>, DESIGN.md section 8).</summary>
    public const string DirVariable = "HALO_MODELS_DIR";

    /// <summary>Base URL that replaces https://huggingface.co for catalog files (mirrors, tests).</summary>
    public const string EndpointVariable = "HALO_MODELS_ENDPOINT";

    /// <summary>A catalog YAML file that replaces the built-in one and /etc/halo/models.yaml.</summary>
    public const string CatalogVariable = "HALO_MODELS_CATALOG";

    public const string DefaultDir = "/var/lib/halo/models";

    public const string DefaultEndpoint = "https://huggingface.co";

    public const string SystemCatalogPath = "/etc/halo/models.yaml";

    /// <summary>The models directory: the flag when given, else HALO_MODELS_DIR, else /var/lib/halo/models.</summary>
    public static string ResolveDir(string? flag) =>
        Full(flag) ?? Full(Environment.GetEnvironmentVariable(DirVariable)) ?? DefaultDir;

    /// <summary>The hub base URL: HALO_MODELS_ENDPOINT when set, else Hugging Face.</summary>
    public static Uri ResolveEndpoint()
    {
        string? value = Environment.GetEnvironmentVariable(EndpointVariable);
        if (string.IsNullOrWhiteSpace(value))
        {
            return new Uri(DefaultEndpoint);
        }

        if (!Uri.TryCreate(value.TrimEnd('/'), UriKind.Absolute, out Uri? uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ModelStoreException($"{EndpointVariable}='{value}' is not an http(s) URL");
        }

        return uri;
    }

    private static string? Full(string? path) => string.IsNullOrWhiteSpace(path) ? null : Path.GetFullPath(path);
}

/// <summary>An operator-facing failure of the model store: the message is the whole story, printed as is.</summary>
public class ModelStoreException : Exception
{
    public ModelStoreException(string message)
        : base(message)
    {
    }

    public ModelStoreException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
