using System.Diagnostics;
using System.Reflection;
using System.Runtime.Intrinsics.X86;
using TerDiT.Runtime.Cpu;
using Xunit;

namespace TerDiT.Testing;

/// <summary>
/// Re-running tests with the JIT's intrinsics switched off (<c>DOTNET_EnableAVX512=0</c>,
/// <c>DOTNET_EnableAVX2=0</c>, <c>DOTNET_EnableHWIntrinsic=0</c>), so that the runtime's fallbacks
/// (256-bit, 128-bit, scalar) meet the same checks as the path this machine picks by default: a test
/// starts <c>dotnet test</c> on its own assembly with a filter and one switch set. (.NET 10 no longer
/// reads <c>DOTNET_EnableAVX512F</c>: set to 0, <c>Vector512.IsHardwareAccelerated</c> stays true.)
/// Linked into both test projects.
/// </summary>
public static class IntrinsicSwitches
{
    /// <summary>Set in a child run to the switch it runs under.</summary>
    const string ChildMarker = "TERDIT_INTRINSIC_SWITCH_CHILD";

    public static TheoryData<string> Variables => new() { "DOTNET_EnableAVX512", "DOTNET_EnableAVX2", "DOTNET_EnableHWIntrinsic" };

    static bool InChild => Environment.GetEnvironmentVariable(ChildMarker) != null;

    /// <summary>
    /// Runs the tests of <paramref name="tests"/> that <paramref name="filter"/> selects with <paramref name="variable"/>=0;
    /// fails with the output's tail unless all pass. Does nothing inside such a child run (no runs within runs).
    /// </summary>
    public static void AssertTestsPass(Assembly tests, string filter, string variable)
    {
        if (InChild) return;
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { "test", tests.Location, "--filter", filter }) start.ArgumentList.Add(a);
        start.Environment[variable] = "0";
        start.Environment[ChildMarker] = variable;
        using var child = Process.Start(start)!;
        var stderr = child.StandardError.ReadToEndAsync();
        string stdout = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        string output = stdout + stderr.Result;
        Assert.True(child.ExitCode == 0, $"tests failed with {variable}=0 (exit {child.ExitCode}):\n{output[Math.Max(0, output.Length - 6000)..]}");
        Assert.Contains("Passed!", output);
    }

    /// <summary>The widest SIMD path the kernels must pick under this process's switch (none: the widest this CPU has).</summary>
    public static SimdPath ExpectedBestPath() => Environment.GetEnvironmentVariable(ChildMarker) switch
    {
        "DOTNET_EnableAVX512" => Avx2.IsSupported ? SimdPath.V256 : SimdPath.V128,
        "DOTNET_EnableAVX2" => SimdPath.V128,
        "DOTNET_EnableHWIntrinsic" => SimdPath.Scalar,
        _ => Avx512F.IsSupported ? SimdPath.V512 : Avx2.IsSupported ? SimdPath.V256 : SimdPath.V128,
    };
}
