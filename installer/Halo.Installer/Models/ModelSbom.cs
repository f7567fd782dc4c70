using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Halo.Core.Formats;

namespace Halo.Installer.Models;

/// <param name="Path">The written file, or null when none was written.</param>
public sealed record SbomResult(string? Path, IReadOnlyList<string> Warnings);

/// <summary>
/// A CycloneDX 1.6 ML-BOM for one model directory (<c>model.cdx.json</c>): the BOM describes (metadata.component)
/// a <c>machine-learning-model</c> with a model card (task, architecture family, inputs and outputs), the license
/// and source from the manifest; its files are the BOM's <c>file</c> components with their SHA-256 (the model
/// depends on them), and the facts read from the model
/// itself as <c>halo:*</c> properties: format, quantization, hyper-parameters, tensor shapes (layers folded
/// into <c>blk.*</c> when they agree) and the tokenizer.
/// </summary>
public static partial class ModelSbom
{
    public const string FileName = "model.cdx.json";

    /// <summary>Opens the model named by the manifest to read its facts, writes the BOM atomically. When the model
    /// cannot be opened the BOM still carries files, hashes, license and source, and a warning says why.</summary>
    public static SbomResult WriteFor(string modelDir, ModelManifest manifest, Func<string, IModelSource>? open)
    {
        var warnings = new List<string>();
        string mainPath = manifest.Main == "." ? modelDir : Path.Combine(modelDir, manifest.Main);
        IModelSource? model = null;
        try
        {
            if (open is not null)
            {
                model = open(mainPath);
            }
            else
            {
                warnings.Add($"{manifest.Name}: no reader for this build; the SBOM lists files and hashes only");
            }
        }
        catch (Exception ex) when (ex is InvalidModelException or IOException or NotSupportedException or UnauthorizedAccessException)
        {
            warnings.Add($"{manifest.Name}: could not read the model for its SBOM ({ex.Message}); the SBOM lists files and hashes only");
        }

        using (model)
        {
            JsonObject bom = Build(manifest, model, DateTimeOffset.UtcNow, Guid.NewGuid());
            string path = Path.Combine(modelDir, FileName);
            AtomicFile.Write(path, JsonSerializer.SerializeToUtf8Bytes(bom, new JsonSerializerOptions { WriteIndented = true }));
            return new SbomResult(path, warnings);
        }
    }

    public static JsonObject Build(ModelManifest manifest, IModelSource? model, DateTimeOffset timestamp, Guid serial)
    {
        string modelRef = $"model:{manifest.Name}";
        var files = new JsonArray();
        foreach (ManifestFile file in manifest.Files)
        {
            var component = new JsonObject
            {
                ["type"] = "file",
                ["bom-ref"] = $"file:{manifest.Name}/{file.Path}",
                ["name"] = file.Path,
                ["hashes"] = new JsonArray(Hash(file.Sha256)),
                ["properties"] = Properties(("halo:size_bytes", file.Size.ToString(CultureInfo.InvariantCulture)), ("halo:sha256_source", file.Sha256Source)),
            };
            if (file.Url is not null)
            {
                component["externalReferences"] = new JsonArray(new JsonObject { ["type"] = "distribution", ["url"] = file.Url });
            }

            files.Add(component);
        }

        var modelComponent = new JsonObject
        {
            ["type"] = "machine-learning-model",
            ["bom-ref"] = modelRef,
            ["name"] = manifest.Name,
            ["description"] = manifest.Description ?? (model is null ? null : $"{model.Config.Name} ({model.Config.Architecture})"),
            ["licenses"] = Licenses(manifest.License),
            ["externalReferences"] = SourceReferences(manifest),
            ["modelCard"] = ModelCard(model),
            ["properties"] = ModelProperties(manifest, model),
        };
        if (manifest.Files.Count == 1)
        {
            modelComponent["hashes"] = new JsonArray(Hash(manifest.Files[0].Sha256));
        }

        RemoveNulls(modelComponent);
        return new JsonObject
        {
            ["bomFormat"] = "CycloneDX",
            ["specVersion"] = "1.6",
            ["serialNumber"] = $"urn:uuid:{serial:D}",
            ["version"] = 1,
            ["metadata"] = new JsonObject
            {
                ["timestamp"] = timestamp.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                ["tools"] = new JsonObject
                {
                    ["components"] = new JsonArray(new JsonObject
                    {
                        ["type"] = "application",
                        ["name"] = "halo",
                        ["version"] = typeof(ModelSbom).Assembly.GetName().Version?.ToString(3) ?? "0",
                    }),
                },
                ["component"] = modelComponent,
            },
            ["components"] = files,
            ["dependencies"] = new JsonArray(new JsonObject
            {
                ["ref"] = modelRef,
                ["dependsOn"] = new JsonArray(manifest.Files.Select(f => (JsonNode)JsonValue.Create($"file:{manifest.Name}/{f.Path}")).ToArray()),
            }),
        };
    }

    private static JsonObject Hash(string sha256) => new() { ["alg"] = "SHA-256", ["content"] = sha256 };

    private static JsonArray? Licenses(string? license)
    {
        if (string.IsNullOrWhiteSpace(license))
        {
            return null;
        }

        // A plain SPDX id goes in "id"; anything else (a sentence, a URL) is a named license.
        JsonObject entry = SpdxId().IsMatch(license) ? new JsonObject { ["id"] = license } : new JsonObject { ["name"] = license };
        return new JsonArray(new JsonObject { ["license"] = entry });
    }

    private static JsonArray? SourceReferences(ModelManifest manifest)
    {
        var references = new JsonArray();
        if (manifest.Source.StartsWith("http://", StringComparison.Ordinal) || manifest.Source.StartsWith("https://", StringComparison.Ordinal))
        {
            references.Add(new JsonObject { ["type"] = "distribution", ["url"] = manifest.Source });
        }

        return references.Count > 0 ? references : null;
    }

    private static JsonObject ModelCard(IModelSource? model)
    {
        var parameters = new JsonObject
        {
            ["task"] = "text-generation",
            ["architectureFamily"] = "transformer",
            ["inputs"] = new JsonArray(new JsonObject { ["format"] = "text" }),
            ["outputs"] = new JsonArray(new JsonObject { ["format"] = "text" }),
        };
        if (model is not null)
        {
            parameters["modelArchitecture"] = $"BitNet b1.58 ({model.Config.Architecture})";
        }

        return new JsonObject { ["modelParameters"] = parameters };
    }

    private static JsonArray ModelProperties(ModelManifest manifest, IModelSource? model)
    {
        var properties = new List<(string, string)>
        {
            ("halo:source", manifest.Source),
            ("halo:format", model?.Format ?? manifest.Format),
            ("halo:main", manifest.Main),
            ("halo:pulled_at", manifest.PulledAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)),
            ("halo:size_bytes", manifest.TotalSize.ToString(CultureInfo.InvariantCulture)),
        };
        if (model is not null)
        {
            AddModelFacts(properties, model);
        }

        return Properties([.. properties]);
    }

    private static void AddModelFacts(List<(string, string)> properties, IModelSource model)
    {
        var c = model.Config;
        string Int(long v) => v.ToString(CultureInfo.InvariantCulture);
        string Float(float v) => v.ToString("R", CultureInfo.InvariantCulture);
        properties.Add(("halo:quantization", Quantization(model)));
        properties.Add(("halo:random_weights", c.RandomWeights ? "true" : "false"));
        properties.Add(("halo:config:architecture", c.Architecture));
        properties.Add(("halo:config:name", c.Name));
        properties.Add(("halo:config:hidden_size", Int(c.HiddenSize)));
        properties.Add(("halo:config:ffn_size", Int(c.FeedForwardSize)));
        properties.Add(("halo:config:layers", Int(c.LayerCount)));
        properties.Add(("halo:config:heads", Int(c.HeadCount)));
        properties.Add(("halo:config:kv_heads", Int(c.KvHeadCount)));
        properties.Add(("halo:config:head_dim", Int(c.HeadDim)));
        properties.Add(("halo:config:vocab_size", Int(c.VocabSize)));
        properties.Add(("halo:config:context_length", Int(c.ContextLength)));
        properties.Add(("halo:config:rope_theta", Float(c.RopeTheta)));
        properties.Add(("halo:config:rms_norm_eps", Float(c.RmsNormEps)));
        properties.Add(("halo:config:activation", c.Activation.ToString().ToLowerInvariant()));
        properties.Add(("halo:config:tied_embeddings", c.TiedEmbeddings ? "true" : "false"));
        properties.Add(("halo:parameters", Int(ParameterCount(model))));
        properties.Add(("halo:tensors", Int(model.Tensors.Count)));
        foreach ((string pattern, string shape) in TensorShapes(model))
        {
            properties.Add(($"halo:tensor:{pattern}", shape));
        }

        if (model.Tokenizer is { } t)
        {
            properties.Add(("halo:tokenizer:model", t.Model));
            properties.Add(("halo:tokenizer:pre", t.PreTokenizer));
            properties.Add(("halo:tokenizer:tokens", Int(t.Tokens.Count)));
            properties.Add(("halo:tokenizer:merges", Int(t.Merges.Count)));
            properties.Add(("halo:tokenizer:bos_id", Int(t.BosId)));
            properties.Add(("halo:tokenizer:eos_id", Int(t.EosId)));
            properties.Add(("halo:tokenizer:eot_id", Int(t.EotId)));
            properties.Add(("halo:tokenizer:chat_template", t.ChatTemplate is null ? "none" : "present"));
        }
        else
        {
            properties.Add(("halo:tokenizer:model", "none"));
        }
    }

    /// <summary>The type of the ternary weight matrices (the model's quantization), e.g. "TQ2_0" or "I2_S".</summary>
    private static string Quantization(IModelSource model)
    {
        var counts = new Dictionary<GgmlType, int>();
        foreach (TensorView tensor in model.Tensors)
        {
            if (tensor.Shape.Length == 2 && tensor.Name.StartsWith("blk.", StringComparison.Ordinal))
            {
                counts[tensor.Type] = counts.GetValueOrDefault(tensor.Type) + 1;
            }
        }

        return counts.Count == 0 ? "none" : counts.MaxBy(kv => kv.Value).Key.ToString();
    }

    private static long ParameterCount(IModelSource model)
    {
        long total = 0;
        foreach (TensorView tensor in model.Tensors)
        {
            total += tensor.ElementCount;
        }

        return total;
    }

    /// <summary>"blk.*.attn_q.weight" -> "TQ2_0 [2560, 2560] x30" when all layers agree, else one entry per tensor.</summary>
    internal static IEnumerable<(string Pattern, string Shape)> TensorShapes(IModelSource model)
    {
        var groups = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (TensorView tensor in model.Tensors)
        {
            string pattern = LayerIndex().Replace(tensor.Name, "blk.*.");
            string shape = $"{tensor.Type} [{string.Join(", ", tensor.Shape)}]";
            if (!groups.TryGetValue(pattern, out List<string>? shapes))
            {
                groups[pattern] = shapes = [];
                order.Add(pattern);
            }

            shapes.Add(shape);
        }

        foreach (string pattern in order)
        {
            List<string> shapes = groups[pattern];
            if (shapes.Distinct().Count() == 1)
            {
                yield return (pattern, shapes.Count == 1 ? shapes[0] : $"{shapes[0]} x{shapes.Count}");
                continue;
            }

            foreach (TensorView tensor in model.Tensors.Where(t => LayerIndex().Replace(t.Name, "blk.*.") == pattern))
            {
                yield return (tensor.Name, $"{tensor.Type} [{string.Join(", ", tensor.Shape)}]");
            }
        }
    }

    private static JsonArray Properties(params (string Name, string Value)[] properties)
    {
        var array = new JsonArray();
        foreach ((string name, string value) in properties)
        {
            array.Add(new JsonObject { ["name"] = name, ["value"] = value });
        }

        return array;
    }

    private static void RemoveNulls(JsonObject node)
    {
        foreach (string key in node.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList())
        {
            node.Remove(key);
        }
    }

    [GeneratedRegex(@"^[A-Za-z0-9.+-]+$")]
    private static partial Regex SpdxId();

    [GeneratedRegex(@"^blk\.\d+\.")]
    private static partial Regex LayerIndex();
}
