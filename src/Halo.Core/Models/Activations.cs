namespace Halo.Core.Models;

/// <summary>Names of <see cref="Activation"/> as model files and the CLI spell them.</summary>
public static class Activations
{
    /// <summary>Parses "silu"/"swish" and "relu2"/"relu_squared"/"squared_relu" (case-insensitive).</summary>
    public static bool TryParse(string? name, out Activation activation)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "silu" or "swish":
                activation = Activation.Silu;
                return true;
            case "relu2" or "relu_squared" or "squared_relu" or "relu^2":
                activation = Activation.Relu2;
                return true;
            default:
                activation = default;
                return false;
        }
    }

    public static string Name(Activation activation) => activation == Activation.Relu2 ? "relu2" : "silu";

    /// <summary>
    /// The activation a GGUF architecture implies when the file does not say (DESIGN.md section 2): llama.cpp's
    /// "bitnet" graph uses SiLU; bitnet.cpp's BitNet b1.58 2B4T architectures use squared ReLU.
    /// </summary>
    public static Activation DefaultForGgufArchitecture(string architecture) =>
        architecture == "bitnet" ? Activation.Silu : Activation.Relu2;
}
