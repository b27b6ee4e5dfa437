namespace TerDiT.Fuzz;

/// <summary>
/// A loader of outside bytes under fuzzing. <see cref="Load"/> gets the path of a file holding one input
/// (named <c>input.EXT</c>) and runs the loader over it as a user's command would; it must return or throw
/// one of <see cref="Refusals"/> (the documented "this file is bad" exceptions). Anything else — another
/// exception, a native crash, a hang, or memory past <see cref="FuzzHarness.MemoryLimitBytes"/> — is a finding.
/// </summary>
/// <param name="Name">Target name on the command line and folder name under fuzz/corpus and fuzz/regressions.</param>
/// <param name="Extension">File extension the loader expects (without the dot).</param>
/// <param name="Load">Runs the loader over the file at the given path.</param>
/// <param name="Refusals">Exception types that mean the input was refused with a message.</param>
/// <param name="Prepare">Optional rewrite of the raw input before it is written (e.g. recomputing a checksum so
/// that mutations reach the parser behind it).</param>
/// <param name="RefusalsNameTheFile">Whether a refusal's message must name the file (true for file loaders; a
/// request body has no file name).</param>
sealed record FuzzTarget(string Name, string Extension, Action<string> Load, Type[] Refusals, Func<byte[], byte[]>? Prepare = null,
    bool RefusalsNameTheFile = true);
