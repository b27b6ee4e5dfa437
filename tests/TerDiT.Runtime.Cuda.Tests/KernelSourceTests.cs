using Xunit;

namespace TerDiT.Runtime.Cuda.Tests;

/// <summary>The embedded kernels compile with NVRTC (wherever NVRTC is installed, GPU or not) and the cubin cache works.</summary>
public class KernelSourceTests
{
    static void RequireNvrtc()
    {
        try { KernelCompiler.NvrtcVersion(); }
        catch (CudaUnavailableException e) { Assert.Skip($"needs NVRTC: {e.Message}"); }
    }

    public static TheoryData<string, int> SourcesAndArchitectures()
    {
        var data = new TheoryData<string, int>();
        foreach (var s in KernelCompiler.Sources)
            foreach (int arch in new[] { 80, 90 }) data.Add(s, arch);
        return data;
    }

    [Fact]
    public void EveryKernelSourceIsEmbedded() =>
        Assert.Equal(["attention.cu", "model_ops.cu", "ternary_gemm.cu"], KernelCompiler.Sources);

    [Theory, MemberData(nameof(SourcesAndArchitectures))]
    public void CompilesWithoutWarnings(string source, int arch)
    {
        RequireNvrtc();
        // NVRTC 11.8 aborts the process on some sm_90 sources (nvcc 11.8 compiles them); 12 and later compile them.
        if (arch >= 90 && KernelCompiler.NvrtcVersion().Major < 12)
            Assert.Skip($"NVRTC {KernelCompiler.NvrtcVersion()} cannot compile sm_90 reliably; needs NVRTC 12 or later");
        var cubin = KernelCompiler.Compile(KernelCompiler.Source(source), source, arch, out string log);
        Assert.True(cubin.Length > 1000, $"cubin of {cubin.Length} bytes");
        Assert.Equal(0x7f, cubin[0]); // an ELF image (machine code), not PTX text
        Assert.DoesNotContain("warning", log, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void SecondRequestComesFromTheDiskCache()
    {
        RequireNvrtc();
        var dir = Directory.CreateTempSubdirectory("terdit-cuda-cache").FullName;
        try
        {
            var first = KernelCompiler.Cubin("model_ops.cu", 80, out bool cached1, dir);
            var second = KernelCompiler.Cubin("model_ops.cu", 80, out bool cached2, dir);
            Assert.False(cached1);
            Assert.True(cached2);
            Assert.Equal(first, second);
            var file = Assert.Single(Directory.GetFiles(dir));
            Assert.Matches(@"model_ops-sm_80-[0-9a-f]{32}\.cubin$", file);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void CompileErrorsNameTheSourceAndArchitecture()
    {
        RequireNvrtc();
        var e = Assert.Throws<CudaException>(() => KernelCompiler.Compile("__global__ void f() { undefined_name(); }", "broken.cu", 80, out _));
        Assert.Contains("broken.cu", e.Message);
        Assert.Contains("sm_80", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
