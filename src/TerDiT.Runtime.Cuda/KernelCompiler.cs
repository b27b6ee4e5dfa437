using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using NvrtcNative = TerDiT.Runtime.Cuda.Nvrtc.NativeMethods;

namespace TerDiT.Runtime.Cuda;

/// <summary>
/// Compiles the embedded kernel sources (<c>Kernels/*.cu</c>) with NVRTC to a cubin for one architecture
/// (<c>sm_XX</c>: machine code, so the driver does not compile again), and caches cubins on disk under
/// <see cref="CacheDirectory"/>, named by the SHA-256 of the source, the options, the architecture and the NVRTC
/// version, written atomically. A second process loads the cached cubin without NVRTC.
/// </summary>
public static class KernelCompiler
{
    /// <summary>The embedded kernel sources, by file name (e.g. <c>ternary_gemm.cu</c>).</summary>
    public static IReadOnlyList<string> Sources { get; } = typeof(KernelCompiler).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)).Select(n => n[Prefix.Length..]).Order().ToArray();

    const string Prefix = "TerDiT.Runtime.Cuda.Kernels.";

    static readonly string[] Options = ["--std=c++17", "--fmad=true", "-lineinfo"];

    /// <summary>
    /// Where cubins are cached: <c>$TERDIT_CUDA_CACHE</c>, else <c>$XDG_CACHE_HOME/terdit/cuda</c>, else
    /// <c>~/.cache/terdit/cuda</c>.
    /// </summary>
    public static string CacheDirectory =>
        Environment.GetEnvironmentVariable("TERDIT_CUDA_CACHE") is { Length: > 0 } dir ? dir
        : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "terdit", "cuda");

    /// <summary>The text of an embedded source.</summary>
    public static string Source(string name)
    {
        using var s = typeof(KernelCompiler).Assembly.GetManifestResourceStream(Prefix + name)
            ?? throw new ArgumentException($"no embedded kernel source '{name}'; known: {string.Join(", ", Sources)}");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    /// <summary>NVRTC's version (major, minor); throws <see cref="CudaUnavailableException"/> when NVRTC is not found.</summary>
    public static (int Major, int Minor) NvrtcVersion()
    {
        if (NvrtcNative.Locate() == null)
            throw new CudaUnavailableException($"no NVRTC (CUDA's run-time compiler) found: tried {NvrtcNative.Searched}; install the CUDA toolkit or set CUDA_PATH");
        Check(NvrtcNative.nvrtcVersion(out int major, out int minor), "nvrtcVersion");
        return (major, minor);
    }

    /// <summary>
    /// The cubin of <paramref name="source"/> for <c>sm_<paramref name="arch"/></c>, from the cache or compiled now
    /// (and cached). <paramref name="fromCache"/> says which. <paramref name="cacheDirectory"/> defaults to
    /// <see cref="CacheDirectory"/>.
    /// </summary>
    public static byte[] Cubin(string source, int arch, out bool fromCache, string? cacheDirectory = null)
    {
        cacheDirectory ??= CacheDirectory;
        var text = Source(source);
        var (major, minor) = NvrtcVersion();
        string key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{text}\n{string.Join(' ', Options)}\nsm_{arch}\nnvrtc {major}.{minor}")));
        string path = Path.Combine(cacheDirectory, $"{Path.GetFileNameWithoutExtension(source)}-sm_{arch}-{key[..32]}.cubin");
        if (File.Exists(path))
        {
            fromCache = true;
            return File.ReadAllBytes(path);
        }
        var cubin = Compile(text, source, arch, out _);
        try
        {
            Directory.CreateDirectory(cacheDirectory);
            string tmp = $"{path}.{Guid.NewGuid():N}.tmp";
            File.WriteAllBytes(tmp, cubin);
            File.Move(tmp, path, overwrite: true);
        }
        catch (IOException) { }                      // an unwritable cache only costs the next process a compile
        catch (UnauthorizedAccessException) { }
        fromCache = false;
        return cubin;
    }

    /// <summary>
    /// Compiles with NVRTC for <c>sm_<paramref name="arch"/></c>; <paramref name="log"/> is NVRTC's log (warnings);
    /// a compile error throws with the log.
    /// </summary>
    public static byte[] Compile(string text, string name, int arch, out string log)
    {
        NvrtcVersion();
        // NVRTC's front end recurses deeply on template-heavy sources: more stack than a pool thread's 1.5 MB.
        byte[]? cubin = null;
        string compileLog = "";
        ExceptionDispatchInfo? error = null;
        var thread = new Thread(() =>
        {
            try { cubin = CompileHere(text, name, arch, out compileLog); }
            catch (Exception e) { error = ExceptionDispatchInfo.Capture(e); }
        }, CompilerStackBytes);
        thread.Start();
        thread.Join();
        error?.Throw();
        log = compileLog;
        return cubin!;
    }

    const int CompilerStackBytes = 64 << 20;

    static byte[] CompileHere(string text, string name, int arch, out string log)
    {
        Check(NvrtcNative.nvrtcCreateProgram(out nint program, text, name, 0, 0, 0), "nvrtcCreateProgram");
        var options = Options.Append($"--gpu-architecture=sm_{arch}").Select(o => Marshal.StringToCoTaskMemUTF8(o)).ToArray();
        try
        {
            int result = NvrtcNative.nvrtcCompileProgram(program, options.Length, options);
            log = Log(program);
            if (result != 0) throw new CudaException($"NVRTC could not compile {name} for sm_{arch}: {log.ReplaceLineEndings(" | ")}");
            Check(NvrtcNative.nvrtcGetCUBINSize(program, out nuint size), "nvrtcGetCUBINSize");
            var cubin = new byte[(int)size];
            unsafe
            {
                fixed (byte* p = cubin) Check(NvrtcNative.nvrtcGetCUBIN(program, p), "nvrtcGetCUBIN");
            }
            return cubin;
        }
        finally
        {
            foreach (var o in options) Marshal.FreeCoTaskMem(o);
            NvrtcNative.nvrtcDestroyProgram(ref program);
        }
    }

    /// <summary>NVRTC's compile log (warnings included) for a program.</summary>
    static unsafe string Log(nint program)
    {
        Check(NvrtcNative.nvrtcGetProgramLogSize(program, out nuint size), "nvrtcGetProgramLogSize");
        var log = new byte[(int)size];
        fixed (byte* p = log) Check(NvrtcNative.nvrtcGetProgramLog(program, p), "nvrtcGetProgramLog");
        return Encoding.UTF8.GetString(log).TrimEnd('\0', '\n', ' ');
    }

    static void Check(int result, string call)
    {
        if (result == 0) return;
        var text = Marshal.PtrToStringUTF8(NvrtcNative.nvrtcGetErrorString(result)) ?? $"error {result}";
        throw new CudaException($"{call} failed: {text}");
    }
}
