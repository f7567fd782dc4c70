namespace Halo.Core.Formats;

/// <summary>
/// Microsoft bitnet.cpp's I2_S tensor type (ggml id 36 in its fork): 2 bits per weight for the whole tensor,
/// followed by one float32 per-tensor scale padded to 32 bytes, so a tensor of n elements takes n / 4 + 32 bytes.
/// </summary>
public static class I2S
{
    public const int TrailerBytes = 32;

    public static long TensorBytes(long elements) => ((elements + 3) / 4) + TrailerBytes;
}
