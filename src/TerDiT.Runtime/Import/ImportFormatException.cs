namespace TerDiT.Runtime.Import;

/// <summary>
/// A file from outside (a PyTorch checkpoint, a diffusers VAE) is malformed, unsupported or refused
/// as unsafe. The message starts with the file name and says what and where.
/// </summary>
public sealed class ImportFormatException(string message, Exception? inner = null) : Exception(message, inner);
