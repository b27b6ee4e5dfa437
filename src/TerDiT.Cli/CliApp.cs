using System.CommandLine;
using TerDiT.Cli.Bench;
using TerDiT.Cli.Commands;

namespace TerDiT.Cli;

/// <summary>
/// The <c>terdit</c> command tree and its error policy: a parse error, a bad value or any failure of a
/// command prints one line <c>terdit: error: …</c> on stderr and exits with <see cref="UsageError"/> (2);
/// success exits 0. Never a stack trace.
/// </summary>
public static class CliApp
{
    public const int UsageError = 2;

    /// <summary>The root command; each command lives in its own file under Commands/ and is registered here with one line.</summary>
    public static RootCommand CreateRoot()
    {
        var root = new RootCommand("TerDiT.NET: train, sample and inspect ternary diffusion transformers.");
        root.Add(InfoCommand.Create());
        root.Add(TrainCommand.Create());
        root.Add(SampleCommand.Create());
        root.Add(PackCommand.Create());
        root.Add(ExportOnnxCommand.Create());
        root.Add(BenchCommand.Create());
        root.Add(NcclSelfTestCommand.Create());
        root.Add(EvalCommand.Create());
        root.Add(PtqCommand.Create());
        root.Add(PlotCommand.Create());
        root.Add(ServeCommand.Create());
        root.Add(ImportCommand.Create());
        root.Add(EncodeCommand.Create());
        return root;
    }

    /// <summary>Parses and runs <paramref name="args"/>, writing to the given writers (default: the console). Returns the exit code.</summary>
    public static int Run(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        var parse = CreateRoot().Parse(args);
        if (parse.Errors.Count > 0)
        {
            var messages = parse.Errors.Select(e => Flatten(e.Message).TrimEnd('.')).Distinct();
            stderr.WriteLine($"terdit: error: {string.Join("; ", messages)} (see 'terdit --help')");
            return UsageError;
        }
        return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
    }

    /// <summary>Runs a command body with the error policy: any exception becomes one line on stderr and exit code 2.</summary>
    public static int Guard(ParseResult parse, Func<TextWriter, int> body)
    {
        var error = parse.InvocationConfiguration.Error;
        try { return body(parse.InvocationConfiguration.Output); }
        catch (Exception e)
        {
            while (e is AggregateException { InnerException: { } inner }) e = inner;
            error.WriteLine($"terdit: error: {OneLine(e.Message)}");
            return UsageError;
        }
    }

    /// <summary>A parse error's lines joined into one ("Must be one of:" lists its choices on the lines below).</summary>
    static string Flatten(string message) =>
        string.Join(' ', message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) is { Length: > 0 } line ? line : "failed without a message";

    /// <summary>The first line of a message (native errors can span many).</summary>
    static string OneLine(string message)
    {
        var line = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
        return string.IsNullOrEmpty(line) ? "failed without a message" : line;
    }
}
