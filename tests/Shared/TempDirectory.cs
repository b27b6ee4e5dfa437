namespace TerDiT.Testing;

/// <summary>
/// A fresh directory under the system temp folder for one test, deleted with its contents on
/// <see cref="Dispose"/> (<c>using var dir = new TempDirectory("name");</c>). It converts to its path,
/// so it can be passed wherever a path string goes. Linked into both test projects.
/// </summary>
public sealed class TempDirectory : IDisposable
{
    /// <summary>The directory's full path.</summary>
    public string Path { get; }

    /// <param name="prefix">Start of the directory's name, to tell tests' leftovers apart.</param>
    public TempDirectory(string prefix = "terdit-test") => Path = Directory.CreateTempSubdirectory(prefix + "-").FullName;

    /// <summary>The path of <paramref name="name"/> inside the directory.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    public static implicit operator string(TempDirectory directory) => directory.Path;

    public override string ToString() => Path;

    public void Dispose()
    {
        if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
    }
}
