using TerDiT.Runtime.Cpu;
using TerDiT.Testing;
using Xunit;

namespace TerDiT.Runtime.Tests.Cpu;

/// <summary>The whole runtime suite again under each intrinsics switch (<see cref="IntrinsicSwitches"/>).</summary>
public class IntrinsicSwitchTests
{
    [Theory, MemberData(nameof(IntrinsicSwitches.Variables), MemberType = typeof(IntrinsicSwitches))]
    public void SuitePassesWithIntrinsicsSwitchedOff(string variable)
    {
        IntrinsicSwitches.AssertTestsPass(typeof(IntrinsicSwitchTests).Assembly,
            $"FullyQualifiedName!~{nameof(IntrinsicSwitchTests)}.{nameof(SuitePassesWithIntrinsicsSwitchedOff)}", variable);
    }

    /// <summary>The switches reach the kernels' path choice (here and in every child run above).</summary>
    [Fact]
    public void BestPathFollowsTheJitSwitches() => Assert.Equal(IntrinsicSwitches.ExpectedBestPath(), SimdPaths.Best);
}
