using TerDiT.Cli;
using Xunit;

namespace TerDiT.Tests;

/// <summary>Runs <c>terdit</c> in-process with captured output: the one helper of every CLI test.</summary>
static partial class Terdit
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = CliApp.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>Asserts exit code 2, exactly one stderr line <c>terdit: error: …</c> containing <paramref name="expected"/> (so no stack trace).</summary>
    public static void AssertUsageError((int Code, string Out, string Err) r, string expected)
    {
        Assert.Equal(CliApp.UsageError, r.Code);
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("terdit: error: ", lines[0]);
        Assert.Contains(expected, lines[0]); // one line: a stack trace (many lines) cannot pass
    }
}
