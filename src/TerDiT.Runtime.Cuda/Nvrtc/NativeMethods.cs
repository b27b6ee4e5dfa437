using System.Reflection;
using System.Runtime.InteropServices;

namespace TerDiT.Runtime.Cuda.Nvrtc;

/// <summary>
/// NVRTC, CUDA's run-time compiler, the functions this backend uses. The library has no fixed name across CUDA
/// versions, so "nvrtc" is resolved by <see cref="Locate"/> when first called. Every function returns an
/// <c>nvrtcResult</c> (0 = success).
/// </summary>
internal static partial class NativeMethods
{
    const string Lib = "nvrtc";

    [LibraryImport(Lib)] internal static partial int nvrtcVersion(out int major, out int minor);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int nvrtcCreateProgram(out nint program, string source, string name, int headers, nint headerSources, nint includeNames);
    [LibraryImport(Lib)] internal static partial int nvrtcCompileProgram(nint program, int count, nint[] options);
    [LibraryImport(Lib)] internal static partial int nvrtcDestroyProgram(ref nint program);
    [LibraryImport(Lib)] internal static partial int nvrtcGetProgramLogSize(nint program, out nuint size);
    [LibraryImport(Lib)] internal static unsafe partial int nvrtcGetProgramLog(nint program, byte* log);
    [LibraryImport(Lib)] internal static partial int nvrtcGetCUBINSize(nint program, out nuint size);
    [LibraryImport(Lib)] internal static unsafe partial int nvrtcGetCUBIN(nint program, byte* cubin);
    [LibraryImport(Lib)] internal static partial nint nvrtcGetErrorString(int result);

    static readonly object Gate = new();
    static bool registered;
    static string? located;
    static readonly List<string> Tried = [];

    /// <summary>
    /// Registers the resolver for "nvrtc" and loads the library now: the first of <c>libnvrtc.so</c>,
    /// <c>libnvrtc.so.13</c>, <c>.12</c>, <c>.11.2</c> that the loader finds, then the same names under
    /// <c>$CUDA_PATH/lib64</c>, <c>/usr/local/cuda*/lib64</c> and <c>/usr/local/cuda*/targets/*/lib</c>, then a Python
    /// environment's <c>nvidia/cu13/lib</c> or <c>nvidia/cuda_nvrtc/lib</c> (PyTorch's wheels). Returns the path or
    /// name loaded, or null with <see cref="Searched"/> saying where it looked.
    /// </summary>
    internal static string? Locate()
    {
        lock (Gate)
        {
            if (!registered)
            {
                NativeLibrary.SetDllImportResolver(typeof(NativeMethods).Assembly, Resolve);
                registered = true;
            }
            if (located != null) return located;
            foreach (var candidate in Candidates())
            {
                Tried.Add(candidate);
                if (NativeLibrary.TryLoad(candidate, out var handle))
                {
                    NativeLibrary.Free(handle);
                    return located = candidate;
                }
            }
            return null;
        }
    }

    /// <summary>The names and paths tried by <see cref="Locate"/>.</summary>
    internal static string Searched => string.Join(", ", Tried.Distinct().Take(12)) + (Tried.Distinct().Count() > 12 ? ", …" : "");

    static readonly string[] Names = ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"];

    static IEnumerable<string> Candidates()
    {
        foreach (var n in Names) yield return n;
        var dirs = new List<string>();
        if (Environment.GetEnvironmentVariable("CUDA_PATH") is { Length: > 0 } cudaPath) dirs.Add(Path.Combine(cudaPath, "lib64"));
        if (Directory.Exists("/usr/local"))
            foreach (var root in Directory.GetDirectories("/usr/local", "cuda*").OrderDescending())
            {
                dirs.Add(Path.Combine(root, "lib64"));
                var targets = Path.Combine(root, "targets");
                if (Directory.Exists(targets)) dirs.AddRange(Directory.GetDirectories(targets).Select(t => Path.Combine(t, "lib")));
            }
        foreach (var venv in new[] { Environment.GetEnvironmentVariable("VIRTUAL_ENV"), "/opt/torch/.venv" })
            if (venv is { Length: > 0 } && Directory.Exists(Path.Combine(venv, "lib")))
                foreach (var site in Directory.GetDirectories(Path.Combine(venv, "lib"), "python3*"))
                {
                    dirs.Add(Path.Combine(site, "site-packages", "nvidia", "cu13", "lib"));
                    dirs.Add(Path.Combine(site, "site-packages", "nvidia", "cuda_nvrtc", "lib"));
                }
        foreach (var dir in dirs.Where(Directory.Exists))
            foreach (var n in Names)
                if (File.Exists(Path.Combine(dir, n))) yield return Path.Combine(dir, n);
    }

    static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Lib) return 0;
        var found = Locate();
        return found != null && NativeLibrary.TryLoad(found, out var handle) ? handle : 0;
    }
}
