using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text.Json;
using Halo.Core.Models;
using Halo.Core.Tokenization;

namespace Halo.Core.Formats;

/// <summary>
/// Writes any <see cref="IModelSource"/> as a Halo <c>.h1b</c> file (H1b.md): tensor data first, each tensor at a
/// 4 KiB boundary with its XxHash64, then the vocabulary and the JSON header, and finally the preamble and
/// section table at offset 0. The file is written to <c>PATH.partial</c> and renamed when complete.
/// </summary>
public static class H1bWriter
{
    public static void Write(IModelSource source, string path)
    {
        string full = Path.GetFullPath(path);
        string temp = full + ".partial";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20))
            {
                Write(source, stream);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>Writes to a seekable stream positioned at 0.</summary>
    public static void Write(IModelSource source, Stream output)
    {
        // Data section: from the first 4 KiB boundary (the preamble and section table fit below it).
        output.SetLength(0);
        output.Write(new byte[H1bFormat.Alignment]);
        long dataStart = H1bFormat.Alignment;
        var entries = new List<(TensorView Tensor, long Offset, ulong Hash)>(source.Tensors.Count);
        foreach (TensorView t in source.Tensors)
        {
            Pad(output, H1bFormat.AlignUp(output.Position));
            long offset = output.Position;
            output.Write(t.Bytes);
            entries.Add((t, offset, XxHash64.HashToUInt64(t.Bytes)));
        }

        long dataEnd = output.Position;
        var sections = new List<(uint Kind, long Offset, long Length, ulong Hash)>
        {
            (H1bFormat.TensorDataSection, dataStart, dataEnd - dataStart, 0),
        };

        if (source.Tokenizer is { } tokenizer)
        {
            byte[] vocabulary = H1bFormat.EncodeVocabulary(tokenizer);
            sections.Add((H1bFormat.VocabularySection, output.Position, vocabulary.Length, XxHash64.HashToUInt64(vocabulary)));
            output.Write(vocabulary);
        }

        byte[] header = Header(source, entries);
        sections.Add((H1bFormat.HeaderSection, output.Position, header.Length, XxHash64.HashToUInt64(header)));
        output.Write(header);

        output.Position = 0;
        output.Write(Preamble(sections));
        output.Flush();
    }

    // magic, version, section count, section entries, then the XxHash64 of all of it.
    private static byte[] Preamble(List<(uint Kind, long Offset, long Length, ulong Hash)> sections)
    {
        var b = new byte[H1bFormat.PreambleBytes + (sections.Count * H1bFormat.SectionEntryBytes) + 8];
        H1bFormat.Magic.CopyTo(b);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), H1bFormat.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), (uint)sections.Count);
        for (int i = 0; i < sections.Count; i++)
        {
            Span<byte> e = b.AsSpan(H1bFormat.PreambleBytes + (i * H1bFormat.SectionEntryBytes), H1bFormat.SectionEntryBytes);
            BinaryPrimitives.WriteUInt32LittleEndian(e, sections[i].Kind);
            BinaryPrimitives.WriteUInt64LittleEndian(e[8..], (ulong)sections[i].Offset);
            BinaryPrimitives.WriteUInt64LittleEndian(e[16..], (ulong)sections[i].Length);
            BinaryPrimitives.WriteUInt64LittleEndian(e[24..], sections[i].Hash);
        }

        int end = b.Length - 8;
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(end), XxHash64.HashToUInt64(b.AsSpan(0, end)));
        return b;
    }

    private static byte[] Header(IModelSource source, List<(TensorView Tensor, long Offset, ulong Hash)> entries)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("format", "halo.h1b");
            w.WriteNumber("version", H1bFormat.Version);
            w.WriteStartObject("source");
            w.WriteString("format", source.Format);
            w.WriteString("file", Path.GetFileName(Path.TrimEndingDirectorySeparator(source.Path)));
            w.WriteEndObject();
            WriteConfig(w, source.Config);
            if (source.Tokenizer is { } tokenizer)
            {
                WriteTokenizer(w, tokenizer);
            }

            w.WriteStartArray("tensors");
            foreach ((TensorView t, long offset, ulong hash) in entries)
            {
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteString("type", GgmlTypeInfo.Name(t.Type));
                w.WriteNumber("type_id", (uint)t.Type);
                w.WriteString("layout", H1bFormat.GgmlLayout);
                w.WriteStartArray("shape");
                foreach (long d in t.Shape)
                {
                    w.WriteNumberValue(d);
                }

                w.WriteEndArray();
                w.WriteNumber("offset", offset);
                w.WriteNumber("length", t.ByteLength);
                w.WriteString("xxh64", hash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture));
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return stream.ToArray();
    }

    private static void WriteConfig(Utf8JsonWriter w, ModelConfig c)
    {
        w.WriteStartObject("config");
        w.WriteString("architecture", c.Architecture);
        w.WriteString("name", c.Name);
        w.WriteNumber("hidden_size", c.HiddenSize);
        w.WriteNumber("feed_forward_size", c.FeedForwardSize);
        w.WriteNumber("layer_count", c.LayerCount);
        w.WriteNumber("head_count", c.HeadCount);
        w.WriteNumber("kv_head_count", c.KvHeadCount);
        w.WriteNumber("head_dim", c.HeadDim);
        w.WriteNumber("vocab_size", c.VocabSize);
        w.WriteNumber("context_length", c.ContextLength);
        w.WriteNumber("rope_theta", c.RopeTheta);
        w.WriteNumber("rms_norm_eps", c.RmsNormEps);
        w.WriteString("activation", Activations.Name(c.Activation));
        w.WriteBoolean("tied_embeddings", c.TiedEmbeddings);
        w.WriteBoolean("random_weights", c.RandomWeights);
        w.WriteEndObject();
    }

    private static void WriteTokenizer(Utf8JsonWriter w, TokenizerModel t)
    {
        w.WriteStartObject("tokenizer");
        w.WriteString("model", t.Model);
        w.WriteString("pre", t.PreTokenizer);
        w.WriteNumber("bos_id", t.BosId);
        w.WriteNumber("eos_id", t.EosId);
        w.WriteNumber("eot_id", t.EotId);
        w.WriteNumber("pad_id", t.PadId);
        w.WriteBoolean("add_bos", t.AddBos);
        if (t.ChatTemplate is not null)
        {
            w.WriteString("chat_template", t.ChatTemplate);
        }

        w.WriteEndObject();
    }

    private static void Pad(Stream s, long to)
    {
        long n = to - s.Position;
        if (n > 0)
        {
            s.Write(new byte[n]);
        }
    }
}
