namespace TerDiT.Runtime.Format;

/// <summary>
/// A <c>.tdit</c> file (or the tensors handed to <see cref="TditWriter"/>) is not a valid packed model.
/// The message names the file and the place that is wrong, e.g.
/// <c>model.tdit: tensor 'blocks.3.attention.wq.weight' data_offsets [..] run past the end of the data section (truncated file?)</c>.
/// </summary>
public sealed class TditFormatException : Exception
{
    public TditFormatException(string message) : base(message) { }
    public TditFormatException(string message, Exception inner) : base(message, inner) { }
}
