using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Halo.Core.Formats;

namespace Halo.Core.Models;

/// <summary>The two weight forms of Hugging Face BitNet b1.58 checkpoints (DESIGN.md section 3).</summary>
public enum CheckpointForm
{
    /// <summary>bf16 master weights (the <c>-bf16</c> repository), ternarized at load.</summary>
    MasterBf16,

    /// <summary>uint8 packed ternary weights with a bf16 <c>weight_scale</c> (the deploy repository).</summary>
    Packed,
}

/// <summary>
/// Writes a random-weight Hugging Face BitNet checkpoint directory (config.json + safetensors, optionally sharded)
/// in either form. The same seed gives the same underlying master weights, so the master and packed forms of one
/// seed describe the same ternary model: a reader that handles both must load the same weights from each.
/// </summary>
public static class SyntheticCheckpoint
{
    public static void Write(string directory, ModelConfig config, CheckpointForm form, ulong seed, string linearClass = "autobitlinear", int shards = 1)
    {
        Directory.CreateDirectory(directory);
        var tensors = new List<(string Name, string DType, long[] Shape, byte[] Data)>
        {
            ("model.embed_tokens.weight", "BF16", [config.VocabSize, config.HiddenSize], RandomBf16(seed, "embed", (long)config.VocabSize * config.HiddenSize, 1f)),
            ("model.norm.weight", "BF16", [config.HiddenSize], NormBf16(seed, "norm", config.HiddenSize)),
        };
        (string Hf, string Part)[] projections =
        [
            ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"),
            ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down"),
        ];
        for (int layer = 0; layer < config.LayerCount; layer++)
        {
            string p = $"model.layers.{layer}.";
            tensors.Add((p + "input_layernorm.weight", "BF16", [config.HiddenSize], NormBf16(seed, p + "in", config.HiddenSize)));
            tensors.Add((p + "post_attention_layernorm.weight", "BF16", [config.HiddenSize], NormBf16(seed, p + "post", config.HiddenSize)));
            tensors.Add((p + "self_attn.attn_sub_norm.weight", "BF16", [config.HeadCount * config.HeadDim], NormBf16(seed, p + "asub", config.HeadCount * config.HeadDim)));
            tensors.Add((p + "mlp.ffn_sub_norm.weight", "BF16", [config.FeedForwardSize], NormBf16(seed, p + "fsub", config.FeedForwardSize)));
            foreach ((string hf, string part) in projections)
            {
                long[] ggml = BitNetTensors.Shape(config, part);
                int inFeatures = (int)ggml[0];
                int outFeatures = (int)ggml[1];
                byte[] master = RandomBf16(seed, p + hf, (long)outFeatures * inFeatures, 0.02f);
                if (form == CheckpointForm.MasterBf16)
                {
                    tensors.Add((p + hf + ".weight", "BF16", [outFeatures, inFeatures], master));
                    continue;
                }

                // Ternarize exactly what the master form stores, so that both forms hold the same model.
                var values = new float[master.Length / 2];
                Bf16.ToFloat(MemoryMarshal.Cast<byte, ushort>(master), values);
                var ternary = new sbyte[values.Length];
                float s = BitNetPacking.Ternarize(values, ternary);
                var packed = new byte[values.Length / 4];
                BitNetPacking.Pack(ternary, outFeatures, inFeatures, packed);
                tensors.Add((p + hf + ".weight", "U8", [outFeatures / 4, inFeatures], packed));
                float stored = linearClass == "bitlinear" ? 1f / s : s;
                tensors.Add((p + hf + ".weight_scale", "BF16", [1], BitConverter.GetBytes(Bf16.FromFloat(stored))));
            }
        }

        WriteShards(directory, tensors, shards);
        WriteConfig(Path.Combine(directory, SafetensorsModel.ConfigFileName), config, form, linearClass);
    }

    private static void WriteShards(string directory, List<(string Name, string DType, long[] Shape, byte[] Data)> tensors, int shards)
    {
        if (shards <= 1)
        {
            var single = new SafetensorsWriter();
            tensors.ForEach(t => single.Add(t.Name, t.DType, t.Shape, t.Data));
            single.Write(Path.Combine(directory, SafetensorsModel.SingleFileName));
            return;
        }

        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int k = 0; k < shards; k++)
        {
            string file = string.Create(CultureInfo.InvariantCulture, $"model-{k + 1:D5}-of-{shards:D5}.safetensors");
            var w = new SafetensorsWriter();
            for (int i = k; i < tensors.Count; i += shards)
            {
                w.Add(tensors[i].Name, tensors[i].DType, tensors[i].Shape, tensors[i].Data);
                map[tensors[i].Name] = file;
            }

            w.Write(Path.Combine(directory, file));
        }

        SafetensorsWriter.WriteIndex(Path.Combine(directory, SafetensorsModel.IndexFileName), map);
    }

    private static void WriteConfig(string path, ModelConfig c, CheckpointForm form, string linearClass)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteStartArray("architectures");
        w.WriteStringValue("BitNetForCausalLM");
        w.WriteEndArray();
        w.WriteString("model_type", "bitnet");
        w.WriteString("_halo_note", "synthetic checkpoint with RANDOM weights, made by Halo for tests");
        w.WriteNumber("hidden_size", c.HiddenSize);
        w.WriteNumber("intermediate_size", c.FeedForwardSize);
        w.WriteNumber("num_hidden_layers", c.LayerCount);
        w.WriteNumber("num_attention_heads", c.HeadCount);
        w.WriteNumber("num_key_value_heads", c.KvHeadCount);
        w.WriteNumber("vocab_size", c.VocabSize);
        w.WriteNumber("max_position_embeddings", c.ContextLength);
        w.WriteNumber("rope_theta", c.RopeTheta);
        w.WriteNumber("rms_norm_eps", c.RmsNormEps);
        w.WriteString("hidden_act", Activations.Name(c.Activation));
        w.WriteBoolean("tie_word_embeddings", true);
        if (form == CheckpointForm.Packed)
        {
            w.WriteStartObject("quantization_config");
            w.WriteString("quant_method", "bitnet");
            w.WriteString("linear_class", linearClass);
            w.WriteString("quantization_mode", "offline");
            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    private static byte[] RandomBf16(ulong seed, string name, long count, float amplitude)
    {
        var rng = new SplitMix64(SplitMix64.Derive(seed, name));
        var bytes = new byte[count * 2];
        Span<ushort> values = MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan());
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Bf16.FromFloat(rng.NextSymmetric(amplitude));
        }

        return bytes;
    }

    private static byte[] NormBf16(ulong seed, string name, int count)
    {
        var rng = new SplitMix64(SplitMix64.Derive(seed, name));
        var bytes = new byte[count * 2];
        Span<ushort> values = MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan());
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Bf16.FromFloat(1f + rng.NextSymmetric(0.1f));
        }

        return bytes;
    }
}
