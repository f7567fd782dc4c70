using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Testing;

namespace Halo.Core.Tests.Formats;

/// <summary>Small real model files for format tests: a synthetic tiny model, and copies of GGUF files with edits.</summary>
internal static class GgufTestFiles
{
    /// <summary>A one-layer version of the tiny preset (fast to write and read).</summary>
    public static SyntheticModelSpec SmallSpec(GgmlType type = GgmlType.TQ2_0, ulong seed = 7) =>
        SyntheticModelSpec.FromPreset("tiny", type, seed) with
        {
            Config = SyntheticModelSpec.PresetConfig("tiny") with { LayerCount = 1, VocabSize = 300 },
        };

    public static string WriteSmallModel(TempDir dir, string name = "small.gguf", GgmlType type = GgmlType.TQ2_0)
    {
        string path = dir.File(name);
        SyntheticModel.Write(SmallSpec(type), path);
        return path;
    }

    /// <summary>
    /// Copies a GGUF file through <see cref="GgufWriter"/>, letting the caller edit the metadata and replace, rename,
    /// reshape or drop tensors (return null to drop).
    /// </summary>
    public static unsafe void Rewrite(string source, string destination, Action<GgufMetadata>? editMetadata = null,
        Func<TensorView, (string Name, GgmlType Type, long[] Shape, byte[] Data)?>? editTensor = null,
        IEnumerable<(string Name, GgmlType Type, long[] Shape, byte[] Data)>? addTensors = null)
    {
        using GgufFile input = GgufFile.Open(source);
        using var output = new FileStream(destination, FileMode.Create);
        var w = new GgufWriter(output);
        foreach (string key in input.Metadata.Keys)
        {
            w.Metadata.Set(key, input.Metadata[key]);
        }

        editMetadata?.Invoke(w.Metadata);
        var data = new List<byte[]>();
        foreach (TensorView t in input.Tensors)
        {
            var edited = editTensor is null ? (t.Name, t.Type, t.Shape, t.Bytes.ToArray()) : editTensor(t);
            if (edited is { } e)
            {
                w.AddTensor(e.Name, e.Type, e.Shape);
                data.Add(e.Data);
            }
        }

        foreach (var (name, type, shape, bytes) in addTensors ?? [])
        {
            w.AddTensor(name, type, shape);
            data.Add(bytes);
        }

        w.WriteHeader();
        foreach (byte[] d in data)
        {
            w.WriteTensorData(d);
        }

        w.Finish();
    }
}
