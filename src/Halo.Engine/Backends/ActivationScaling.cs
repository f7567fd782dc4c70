namespace Halo.Engine.Backends;

/// <summary>How activations entering a ternary matmul are scaled to int8.</summary>
public enum ActivationScaling
{
    /// <summary>llama.cpp's Q8_K: one scale per 256-element block, q = round(-127 x / max) with max the signed
    /// element of largest magnitude, clamped to 127.</summary>
    PerBlock,

    /// <summary>BitNet training: one scale per token, q = clamp(round(127 x / absmax), -128, 127).</summary>
    PerToken,
}
