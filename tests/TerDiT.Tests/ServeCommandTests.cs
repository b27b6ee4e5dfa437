using System.Net;
using System.Net.Sockets;
using TerDiT.Cli;
using Xunit;
using static TerDiT.Tests.Terdit;

namespace TerDiT.Tests;

/// <summary><c>terdit serve</c>'s refusals (the service itself is tested in TerDiT.Serve.Tests).</summary>
public class ServeCommandTests
{
    [Fact]
    public void BadServeInvocationsAreOneLineAndExitCode2()
    {
        if (!TorchSharp.torch.cuda.is_available()) // without a GPU the CUDA backend's error names what is missing
            AssertUsageError(Run("serve", "--device", "cuda"), "CUDA");
        AssertUsageError(Run("serve", "--max-steps", "2000"), "at most 1000");
        AssertUsageError(Run("serve", "--batch", "0"), "must be positive");
        AssertUsageError(Run("serve", "--port", "70000"), "--port");
        AssertUsageError(Run("serve", "--model", "/nonexistent/model.tdit"), "model.tdit");
    }

    [Fact]
    public void AnotherAddressIsWarnedAboutAndAPortInUseIsAnError()
    {
        using var taken = new TcpListener(IPAddress.Any, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var r = Run("serve", "--host", "0.0.0.0", "--port", port.ToString());
        Assert.Equal(CliApp.UsageError, r.Code);
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("terdit: warning: listening on 0.0.0.0", lines[0]);
        Assert.Contains("no authentication", lines[0]);
        Assert.StartsWith("terdit: error: ", lines[1]);
        Assert.Contains("address already in use", lines[1]);
    }
}
