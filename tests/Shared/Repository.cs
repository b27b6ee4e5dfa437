namespace TerDiT.Testing;

/// <summary>Paths in the repository the tests run from. Linked into both test projects.</summary>
public static class Repository
{
    /// <summary>The folder holding TerDiT.sln, found above the test binaries.</summary>
    public static string Root
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir != null && !File.Exists(Path.Combine(dir.FullName, "TerDiT.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("repository root (TerDiT.sln) not found above the test binaries");
        }
    }

    /// <summary>A path under tests/fixtures.</summary>
    public static string Fixture(params string[] parts) => Path.Combine([Root, "tests", "fixtures", .. parts]);
}
