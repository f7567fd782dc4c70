namespace Halo.Core.Formats;

/// <summary>Tensor element types, numbered exactly as ggml numbers them in GGUF files.</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q8_0 = 8,
    I8 = 24,
    I32 = 26,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    /// <summary>Microsoft bitnet.cpp's 2-bit ternary type (not in mainline ggml; id as bitnet.cpp assigns it).</summary>
    I2_S = 36,
}
