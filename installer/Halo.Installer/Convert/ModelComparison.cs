using System.Buffers;
using System.Runtime.InteropServices;
using Halo.Core.Formats;
using Halo.Core.Tokenization;

namespace Halo.Installer.Convert;

/// <summary>
/// Checks that two readings of a model hold the same model: the same config, the same tokenizer and, tensor by
/// tensor, the same values. Tensors of the same type must match byte for byte; tensors stored in different types
/// (a converter may re-encode) are decoded to float32 row by row and must match bit for bit.
/// </summary>
public static class ModelComparison
{
    /// <summary>Every difference found, in model order (empty when the models are the same).</summary>
    /// <param name="progress">Bytes of <paramref name="expected"/> compared so far.</param>
    public static IReadOnlyList<string> Compare(IModelSource expected, IModelSource actual, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        var differences = new List<string>();
        CompareConfig(expected, actual, differences);
        CompareTokenizer(expected.Tokenizer, actual.Tokenizer, differences);

        long done = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (TensorView want in expected.Tensors)
        {
            cancellationToken.ThrowIfCancellationRequested();
            seen.Add(want.Name);
            if (!actual.TryGetTensor(want.Name, out TensorView got))
            {
                differences.Add($"{want.Name}: missing");
                continue;
            }

            if (!want.Shape.AsSpan().SequenceEqual(got.Shape))
            {
                differences.Add($"{want.Name}: shape [{string.Join(", ", want.Shape)}] became [{string.Join(", ", got.Shape)}]");
            }
            else if (CompareValues(want, got) is { } problem)
            {
                differences.Add($"{want.Name}: {problem}");
            }

            done += want.ByteLength;
            progress?.Report(done);
        }

        foreach (TensorView extra in actual.Tensors)
        {
            if (!seen.Contains(extra.Name))
            {
                differences.Add($"{extra.Name}: not in the source");
            }
        }

        return differences;
    }

    private static void CompareConfig(IModelSource expected, IModelSource actual, List<string> differences)
    {
        if (expected.Config != actual.Config)
        {
            differences.Add($"config: {expected.Config} became {actual.Config}");
        }
    }

    private static void CompareTokenizer(TokenizerModel? expected, TokenizerModel? actual, List<string> differences)
    {
        if (expected is null || actual is null)
        {
            if (expected is not null || actual is not null)
            {
                differences.Add($"tokenizer: {(expected is null ? "absent" : "present")} became {(actual is null ? "absent" : "present")}");
            }

            return;
        }

        if (!expected.Tokens.SequenceEqual(actual.Tokens) || !expected.Merges.SequenceEqual(actual.Merges)
            || !(expected.TokenTypes ?? []).SequenceEqual(actual.TokenTypes ?? [])
            || expected.Model != actual.Model || expected.PreTokenizer != actual.PreTokenizer || expected.BosId != actual.BosId
            || expected.EosId != actual.EosId || expected.EotId != actual.EotId || expected.PadId != actual.PadId
            || expected.AddBos != actual.AddBos || expected.ChatTemplate != actual.ChatTemplate)
        {
            differences.Add($"tokenizer: differs ({expected.Tokens.Count} tokens, {expected.Merges.Count} merges became {actual.Tokens.Count}, {actual.Merges.Count})");
        }
    }

    /// <summary>Null when equal, else what differs (first differing element).</summary>
    private static string? CompareValues(TensorView want, TensorView got)
    {
        if (want.Type == got.Type)
        {
            if (want.ByteLength != got.ByteLength)
            {
                return $"{want.ByteLength} bytes became {got.ByteLength}";
            }

            int mismatch = FirstDifference(want.Bytes, got.Bytes);
            return mismatch < 0 ? null : $"byte {mismatch} differs ({want.Type})";
        }

        if (!CanDecode(want.Type) || !CanDecode(got.Type))
        {
            return $"stored as {want.Type}, became {got.Type}, and one of them cannot be decoded to compare";
        }

        long rowLength = want.Shape[0];
        long rows = want.ElementCount / rowLength;
        long wantRowBytes = GgmlTypeInfo.RowBytes(want.Type, rowLength);
        long gotRowBytes = GgmlTypeInfo.RowBytes(got.Type, rowLength);
        float[] a = ArrayPool<float>.Shared.Rent((int)rowLength);
        float[] b = ArrayPool<float>.Shared.Rent((int)rowLength);
        try
        {
            for (long row = 0; row < rows; row++)
            {
                Decode(want.Type, want.Bytes.Slice((int)(row * wantRowBytes), (int)wantRowBytes), a.AsSpan(0, (int)rowLength));
                Decode(got.Type, got.Bytes.Slice((int)(row * gotRowBytes), (int)gotRowBytes), b.AsSpan(0, (int)rowLength));
                int mismatch = FirstDifference(
                    MemoryMarshal.AsBytes(a.AsSpan(0, (int)rowLength)),
                    MemoryMarshal.AsBytes(b.AsSpan(0, (int)rowLength)));
                if (mismatch >= 0)
                {
                    int element = mismatch / sizeof(float);
                    return $"row {row} element {element}: {a[element]:R} ({want.Type}) became {b[element]:R} ({got.Type})";
                }
            }

            return null;
        }
        finally
        {
            ArrayPool<float>.Shared.Return(a);
            ArrayPool<float>.Shared.Return(b);
        }
    }

    private static int FirstDifference(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        int common = a.CommonPrefixLength(b);
        return common == a.Length && a.Length == b.Length ? -1 : common;
    }

    private static bool CanDecode(GgmlType type) =>
        type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0 or GgmlType.TQ1_0 or GgmlType.TQ2_0;

    private static void Decode(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case GgmlType.F16:
                Fp16.ToFloat(MemoryMarshal.Cast<byte, ushort>(src), dst);
                break;
            case GgmlType.BF16:
                Bf16.ToFloat(MemoryMarshal.Cast<byte, ushort>(src), dst);
                break;
            case GgmlType.Q8_0:
                Q8_0.Dequantize(src, dst);
                break;
            case GgmlType.TQ1_0:
                Tq1_0.Dequantize(src, dst);
                break;
            case GgmlType.TQ2_0:
                Tq2_0.Dequantize(src, dst);
                break;
            default:
                throw new NotSupportedException($"cannot decode {type}");
        }
    }
}
