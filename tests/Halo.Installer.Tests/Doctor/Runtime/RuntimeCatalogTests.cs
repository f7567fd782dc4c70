using Halo.Installer.Doctor.Runtime;

namespace Halo.Installer.Tests.Doctor.Runtime;

public class RuntimeCatalogTests
{
    [Theory]
    [InlineData("python", "python")]
    [InlineData("python3", "python")]
    [InlineData("python3.11", "python")]
    [InlineData("python2.7", "python")]
    [InlineData("pythonw", "python")]
    [InlineData("pypy3.10", "pypy")]
    [InlineData("node", "node")]
    [InlineData("nodejs", "nodejs")]
    [InlineData("perl5.36.0", "perl")]
    [InlineData("php8.2", "php")]
    [InlineData("php-fpm8.3", "php-fpm")]
    [InlineData("lua5.4", "lua")]
    [InlineData("luajit", "luajit")]
    [InlineData("tclsh8.6", "tclsh")]
    [InlineData("Rscript", "Rscript")]
    [InlineData("java", "java")]
    [InlineData("ruby3.2", "ruby")]
    public void Match_RuntimeNames_Match(string name, string runtime) => Assert.Equal(runtime, RuntimeCatalog.Default.Match(name));

    [Theory]
    [InlineData("my-python-exporter")]
    [InlineData("python3-config-helper")]
    [InlineData("pythonista")]
    [InlineData("nodeexporter")]
    [InlineData("node_exporter")]
    [InlineData("perlbrew-x")]
    [InlineData("javac-wrapper")]
    [InlineData("halo-server")]
    [InlineData("rscript")]
    [InlineData("python3.")]
    [InlineData("python3..1")]
    [InlineData("")]
    public void Match_OtherNames_DoNotMatch(string name) => Assert.Null(RuntimeCatalog.Default.Match(name));
}
