namespace Halo.Engine.Backends;

/// <summary>The checks every <see cref="IBackend"/> makes on one step's chunks before it runs them.</summary>
public static class SequenceChunks
{
    /// <summary>
    /// Throws an <see cref="ArgumentException"/> unless every chunk names a distinct slot in 0..maxSlots-1, has at
    /// least one token, fits its positions inside the context and holds only token ids below
    /// <paramref name="tokenLimit"/> (the vocabulary, or fewer when the embedding has fewer rows); messages name the
    /// vocabulary as 0..vocabSize-1.
    /// </summary>
    public static void Validate(ReadOnlySpan<SequenceChunk> chunks, int maxSlots, int contextLength, int vocabSize, int tokenLimit)
    {
        for (int c = 0; c < chunks.Length; c++)
        {
            SequenceChunk chunk = chunks[c];
            if (chunk.Slot < 0 || chunk.Slot >= maxSlots)
            {
                throw new ArgumentOutOfRangeException(nameof(chunks), $"slot {chunk.Slot} is outside 0..{maxSlots - 1}");
            }

            for (int o = 0; o < c; o++)
            {
                if (chunks[o].Slot == chunk.Slot)
                {
                    throw new ArgumentException($"slot {chunk.Slot} appears in two chunks of one step");
                }
            }

            if (chunk.Tokens.Length == 0)
            {
                throw new ArgumentException($"the chunk for slot {chunk.Slot} has no tokens");
            }

            if (chunk.StartPosition < 0 || chunk.StartPosition + chunk.Tokens.Length > contextLength)
            {
                throw new ArgumentOutOfRangeException(nameof(chunks), $"positions {chunk.StartPosition}..{chunk.StartPosition + chunk.Tokens.Length - 1} exceed the context length {contextLength}");
            }

            foreach (int token in chunk.Tokens.Span)
            {
                if ((uint)token >= (uint)tokenLimit)
                {
                    throw new ArgumentOutOfRangeException(nameof(chunks), $"token id {token} is outside the vocabulary (0..{vocabSize - 1})");
                }
            }
        }
    }
}
