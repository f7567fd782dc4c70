namespace Halo.Core.Tokenization;

/// <summary>
/// Token types as GGUF stores them in <c>tokenizer.ggml.token_type</c> (llama.cpp's <c>llama_token_type</c>).
/// They decide how a token is matched in text and how it is decoded.
/// </summary>
public enum TokenType
{
    Undefined = 0,
    Normal = 1,       // decoded through the byte-level alphabet
    Unknown = 2,
    Control = 3,      // <|eot_id|> and friends: matched in text only when asked, decoded only when asked
    UserDefined = 4,  // added tokens that are plain text: always matched in text, decoded as their text
    Unused = 5,
    Byte = 6,
}
