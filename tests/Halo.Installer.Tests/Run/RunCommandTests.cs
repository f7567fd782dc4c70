using System.Text.Json;
using Halo.Testing;

namespace Halo.Installer.Tests.Run;

public sealed class RunCommandTests
{
    [Fact]
    public void Run_TinyModelJson_PrintsContractFieldsAndDumpsLogits()
    {
        using var dir = new TempDir();
        string model = HaloProcess.TinyModel(dir);
        string logitsFile = dir.File("logits.f32");
        (int code, string stdout, string stderr) = HaloProcess.Run("run", "--model", model, "--prompt", "Hello there", "--max-tokens", "4",
            "--temperature", "0", "--compat", "llamacpp", "--threads", "2", "--json", "--dump-logits", logitsFile);
        Assert.True(code == 0, stderr);

        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement d = doc.RootElement;
        Assert.Equal(model, d.GetProperty("model").GetString());
        Assert.Equal("cpu", d.GetProperty("backend").GetString());
        int[] prompt = d.GetProperty("prompt_tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        int[] generated = d.GetProperty("generated_tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.True(prompt.Length > 1);
        Assert.InRange(generated.Length, 1, 4);
        Assert.Contains(d.GetProperty("finish_reason").GetString(), new[] { "stop", "length" });
        Assert.True(d.TryGetProperty("text", out _));
        JsonElement[] top = d.GetProperty("first_position").GetProperty("top").EnumerateArray().ToArray();
        Assert.Equal(10, top.Length);
        Assert.Equal(generated[0], top[0].GetProperty("id").GetInt32());
        Assert.True(top[0].GetProperty("prob").GetDouble() >= top[1].GetProperty("prob").GetDouble());
        foreach (string t in (string[])["load_ms", "prefill_tokens_per_s", "decode_tokens_per_s"])
        {
            Assert.True(d.GetProperty("timings").GetProperty(t).GetDouble() >= 0);
        }

        byte[] bytes = File.ReadAllBytes(logitsFile);
        float[] logits = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, logits, 0, bytes.Length);
        Assert.Equal(1024 * 4, bytes.Length);
        Assert.Equal(generated[0], Array.IndexOf(logits, logits.Max()));
        Assert.Equal(top[0].GetProperty("logit").GetSingle(), logits.Max());
    }

    /// <summary>--lm-head reaches the CPU backend: each precision gives its own logits, all close to the exact head's.</summary>
    [Fact]
    public void Run_LmHeadFlag_ChangesLogitsWithinQuantizationError()
    {
        using var dir = new TempDir();
        string model = HaloProcess.TinyModel(dir);
        var logits = new Dictionary<string, float[]>();
        foreach (string head in (string[])["source", "int8", "int6", "int4"])
        {
            string file = dir.File(head + ".f32");
            (int code, _, string stderr) = HaloProcess.Run("run", "--model", model, "--tokens", "1,2,3", "--max-tokens", "1", "--temperature", "0",
                "--threads", "2", "--backend", "cpu", "--lm-head", head, "--dump-logits", file);
            Assert.True(code == 0, stderr);
            byte[] bytes = File.ReadAllBytes(file);
            logits[head] = new float[bytes.Length / 4];
            Buffer.BlockCopy(bytes, 0, logits[head], 0, bytes.Length);
        }

        float[] exact = logits["source"];
        double mean = exact.Average(), std = Math.Sqrt(exact.Average(v => (v - mean) * (v - mean)));
        foreach (string head in (string[])["int8", "int6", "int4"])
        {
            double maxError = exact.Zip(logits[head], (a, b) => Math.Abs(a - b)).Max();
            Assert.InRange(maxError / std, 1e-6, 1.0);
        }

        Assert.NotEqual(logits["int8"], logits["int4"]);
        Assert.NotEqual(logits["int8"], logits["int6"]);
        Assert.NotEqual(logits["int6"], logits["int4"]);
    }

    [Fact]
    public void Run_SameSeed_SameTokens()
    {
        using var dir = new TempDir();
        string model = HaloProcess.TinyModel(dir);
        string[] args = ["run", "--model", model, "--tokens", "1,2,3", "--max-tokens", "6", "--temperature", "1.0", "--seed", "7", "--json"];
        (int c1, string a, _) = HaloProcess.Run(args);
        (int c2, string b, _) = HaloProcess.Run(args);
        Assert.Equal(0, c1);
        Assert.Equal(0, c2);
        Assert.Equal(Tokens(a), Tokens(b));
        static string Tokens(string json) => JsonDocument.Parse(json).RootElement.GetProperty("generated_tokens").GetRawText();
    }

    [Fact]
    public void Run_MissingModel_ExitsOneWithClearError()
    {
        using var dir = new TempDir();
        (int code, _, string stderr) = HaloProcess.Run("run", "--model", dir.File("missing.gguf"), "--prompt", "hi");
        Assert.Equal(1, code);
        Assert.Contains("missing.gguf", stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
    }

    [Fact]
    public void Run_TruncatedModel_ExitsOneWithClearError()
    {
        using var dir = new TempDir();
        string model = HaloProcess.TinyModel(dir);
        byte[] bytes = File.ReadAllBytes(model);
        File.WriteAllBytes(model, bytes[..(bytes.Length / 2)]);
        (int code, _, string stderr) = HaloProcess.Run("run", "--model", model, "--tokens", "1,2");
        Assert.Equal(1, code);
        Assert.Contains("cannot load model", stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
    }

    [Theory]
    [InlineData("--prompt", "hi", "--tokens", "1,2")]
    [InlineData("--tokens", "1,x", "--max-tokens", "2")]
    [InlineData("--prompt", "hi", "--temperature", "-1")]
    [InlineData("--prompt", "hi", "--backend", "tpu")]
    [InlineData("--prompt", "hi", "--lm-head", "int3")]
    public void Run_BadFlags_ExitsTwo(string a, string b, string c, string d)
    {
        using var dir = new TempDir();
        string model = HaloProcess.TinyModel(dir);
        (int code, _, string stderr) = HaloProcess.Run("run", "--model", model, a, b, c, d);
        Assert.True(code == 2, stderr);
    }

    [Fact]
    public void Run_TokenOutsideVocabulary_ExitsOneWithClearError()
    {
        using var dir = new TempDir();
        string model = HaloProcess.TinyModel(dir);
        (int code, _, string stderr) = HaloProcess.Run("run", "--model", model, "--tokens", "1,99999");
        Assert.Equal(1, code);
        Assert.Contains("99999", stderr);
    }
}
