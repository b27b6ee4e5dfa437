using Mono.Cecil;
using Mono.Cecil.Cil;
using TorchSharp;
using Xunit;

namespace TerDiT.Tests;

/// <summary>
/// No call in the project's TorchSharp code passes libtorch a Scalar or a Tensor that nothing references
/// (see <see cref="Scalars"/>): the compiled code of TerDiT and TerDiT.Cli is read instruction by instruction,
/// and a call is refused when it converts a number implicitly (to a Scalar or to a Tensor), calls a TorchSharp
/// method that makes such a Scalar itself (found the same way in TorchSharp's own code, through its calls to
/// its own methods), or makes a TorchSharp module whose forward does (a module's forward is reached through a
/// virtual call the scan cannot follow).
/// </summary>
public sealed class ScalarSafetyTests
{
    [Fact]
    public void NoCallPassesLibtorchAnUnreferencedScalar()
    {
        using var torchSharp = ModuleDefinition.ReadModule(typeof(Scalar).Assembly.Location);
        var unsafeInTorchSharp = MethodsThatMakeUnheldScalars(torchSharp);
        Assert.Contains(unsafeInTorchSharp, m => m.Contains("Tensor::add(TorchSharp.torch/Tensor)", StringComparison.Ordinal)); // the scan sees the alpha of 1 inside a + b
        var unsafeModules = torchSharp.GetTypes().Where(t => ForwardMakesUnheldScalars(t, unsafeInTorchSharp)).Select(t => t.FullName).ToHashSet();
        Assert.Contains("TorchSharp.Modules.BatchNorm2d", unsafeModules); // its training step counts batches with add_(1)

        var findings = new List<string>();
        foreach (var assembly in new[] { typeof(Scalars).Assembly.Location, typeof(TerDiT.Cli.CliApp).Assembly.Location })
        {
            using var module = ModuleDefinition.ReadModule(assembly, new ReaderParameters { ReadSymbols = true });
            foreach (var method in module.GetTypes().SelectMany(t => t.Methods).Where(m => m.HasBody))
                foreach (var instruction in method.Body.Instructions)
                    if (instruction.Operand is MethodReference callee && (IsImplicitNumberConversion(callee) || unsafeInTorchSharp.Contains(callee.FullName)
                        || unsafeModules.Contains(callee.ReturnType.FullName) || callee.Name == ".ctor" && unsafeModules.Contains(callee.DeclaringType.FullName)))
                        findings.Add($"{Where(method, instruction)}: {callee.DeclaringType.Name}::{callee.Name}({string.Join(", ", callee.Parameters.Select(p => p.ParameterType.Name))})");
        }
        Assert.True(findings.Count == 0, $"{findings.Count} calls pass an unreferenced Scalar or Tensor:\n{string.Join("\n", findings.Order())}");
    }

    /// <summary>An implicit conversion of a number to a TorchSharp Scalar or Tensor.</summary>
    static bool IsImplicitNumberConversion(MethodReference m) =>
        m.Name == "op_Implicit" && m.Parameters.Count == 1 && m.Parameters[0].ParameterType.IsPrimitive
        && m.ReturnType.FullName is "TorchSharp.Scalar" or "TorchSharp.torch/Tensor";

    /// <summary>
    /// TorchSharp's methods that create a Scalar (an implicit conversion or ToScalar) and never dispose one, and
    /// every TorchSharp method that calls one of them.
    /// </summary>
    static HashSet<string> MethodsThatMakeUnheldScalars(ModuleDefinition module)
    {
        var calls = new Dictionary<string, List<string>>();
        var found = new HashSet<string>();
        foreach (var method in module.GetTypes().Where(t => t.Name is not ("Scalar" or "ScalarExtensionMethods")).SelectMany(t => t.Methods).Where(m => m.HasBody))
        {
            var callees = method.Body.Instructions.Select(i => i.Operand).OfType<MethodReference>().ToList();
            calls[method.FullName] = callees.Select(c => c.FullName).ToList();
            bool creates = callees.Any(c => c.ReturnType.FullName == "TorchSharp.Scalar" && c.Name is "op_Implicit" or "ToScalar");
            bool disposes = callees.Any(c => c.DeclaringType.FullName == "TorchSharp.Scalar" && c.Name == "Dispose");
            if (creates && !disposes) found.Add(method.FullName);
        }
        for (bool grew = true; grew;)
        {
            grew = false;
            foreach (var (method, callees) in calls)
                if (!found.Contains(method) && callees.Any(found.Contains))
                    grew = found.Add(method) || grew;
        }
        return found;
    }

    /// <summary>Whether the forward that <paramref name="type"/> runs (its own or its nearest base type's) makes an unheld Scalar.</summary>
    static bool ForwardMakesUnheldScalars(TypeDefinition? type, HashSet<string> unsafeMethods)
    {
        for (; type is not null; type = type.BaseType is { Scope: ModuleDefinition } inTorchSharp ? inTorchSharp.Resolve() : null)
        {
            var forwards = type.Methods.Where(m => m.Name == "forward" && m.HasBody).ToList();
            if (forwards.Count > 0) return forwards.Any(m => unsafeMethods.Contains(m.FullName));
        }
        return false;
    }

    static string Where(MethodDefinition method, Instruction instruction)
    {
        var point = method.DebugInformation.SequencePoints.LastOrDefault(p => p.Offset <= instruction.Offset && !p.IsHidden);
        return point is null ? method.FullName : $"{Path.GetFileName(point.Document.Url)}:{point.StartLine} ({method.DeclaringType.Name}.{method.Name})";
    }
}
