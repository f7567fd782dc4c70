using BenchmarkDotNet.Attributes;
using Halo.Core.Formats;
using Halo.Core.Models;

namespace Halo.Benchmarks.Formats;

/// <summary>
/// Opening model files (header, metadata and the 128k-token LLaMA-3 vocabulary; tensors stay mapped) and decoding
/// ternary blocks. Run: dotnet run -c Release --project tests/Halo.Benchmarks -- --filter '*FormatBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class FormatBenchmarks
{
    private const int Elements = 1 << 20;

    private string _directory = "";
    private string _gguf = "";
    private string _h1b = "";
    private byte[] _tq2 = [];
    private byte[] _tq1 = [];
    private readonly float[] _output = new float[Elements];

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateTempSubdirectory("halo-bench-").FullName;
        _gguf = Path.Combine(_directory, "tiny-llama3.gguf");
        _h1b = Path.Combine(_directory, "tiny-llama3.h1b");
        SyntheticModelSpec spec = SyntheticModelSpec.FromPreset("tiny", GgmlType.TQ2_0, seed: 1, tokenizerDirectory: Llama3Directory());
        SyntheticModel.Write(spec, _gguf);
        using (GgufModel model = GgufModel.Open(_gguf))
        {
            H1bWriter.Write(model, _h1b);
        }

        var rng = new Random(1);
        var weights = new float[Elements];
        for (int i = 0; i < Elements; i++)
        {
            weights[i] = rng.Next(3) - 1;
        }

        _tq2 = new byte[Elements / Tq2_0.BlockSize * Tq2_0.BlockBytes];
        _tq1 = new byte[Elements / Tq1_0.BlockSize * Tq1_0.BlockBytes];
        Tq2_0.Quantize(weights, _tq2);
        Tq1_0.Quantize(weights, _tq1);
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_directory, recursive: true);

    /// <summary>GGUF with the full LLaMA-3 vocabulary: parse, tokenizer metadata, config, tensor validation.</summary>
    [Benchmark]
    public int OpenGguf()
    {
        using GgufModel model = GgufModel.Open(_gguf);
        return model.Tensors.Count;
    }

    [Benchmark]
    public int OpenH1bWithoutTensorChecksums()
    {
        using H1bModel model = H1bModel.Open(_h1b, verifyTensors: false);
        return model.Tensors.Count;
    }

    [Benchmark]
    public int OpenH1bVerified()
    {
        using H1bModel model = H1bModel.Open(_h1b);
        return model.Tensors.Count;
    }

    /// <summary>Reference (scalar) dequantization of 1M TQ2_0 weights.</summary>
    [Benchmark]
    public float DequantizeTq2_0()
    {
        Tq2_0.Dequantize(_tq2, _output);
        return _output[^1];
    }

    [Benchmark]
    public float DequantizeTq1_0()
    {
        Tq1_0.Dequantize(_tq1, _output);
        return _output[^1];
    }

    private static string Llama3Directory()
    {
        if (Environment.GetEnvironmentVariable("HALO_SHARED_DIR") is { Length: > 0 } shared)
        {
            return Path.Combine(shared, "tokenizers", "llama3");
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Halo.Appliance.sln")))
            {
                return Path.Combine(dir.FullName, "..", "shared", "tokenizers", "llama3");
            }
        }

        throw new InvalidOperationException("Halo.Appliance.sln not found above " + AppContext.BaseDirectory + "; set HALO_SHARED_DIR.");
    }
}
