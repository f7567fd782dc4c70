namespace Halo.Core.Chat;

/// <summary>The prompt formats Halo renders without a template engine.</summary>
public enum ChatTemplateKind
{
    /// <summary>LLaMA-3 instruct: <c>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\ncontent&lt;|eot_id|&gt;</c>.</summary>
    Llama3,

    /// <summary>BitNet b1.58 2B4T: <c>Role: content&lt;|eot_id|&gt;</c>, generation prompt <c>Assistant: </c>.</summary>
    BitNet,
}
