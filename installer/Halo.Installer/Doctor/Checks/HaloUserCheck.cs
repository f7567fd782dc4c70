namespace Halo.Installer.Doctor.Checks;

/// <summary>`user.halo`: the `halo` system user exists and is in `render` and `video` (access to /dev/kfd, /dev/dri).</summary>
public sealed class HaloUserCheck : FileCheck
{
    public const string UserName = "halo";
    public static readonly string[] GpuGroups = ["render", "video"];

    public override string Id => "user.halo";

    public override string Title => "halo user";

    protected override CheckResult Run(DoctorContext context)
    {
        UserDatabase users = UserDatabase.Read(context.Root);
        if (users.FindUser(UserName) is not { } user)
        {
            return Fail("no 'halo' user in /etc/passwd", "sudo halo provision (creates the halo system user in render and video)");
        }

        var missing = GpuGroups.Where(g => !users.IsMember(user, g)).ToList();
        if (missing.Count == 0)
        {
            return Ok($"halo (uid {user.Uid}) is in {string.Join(" and ", GpuGroups)}");
        }

        string finding = $"halo (uid {user.Uid}) is not in {string.Join(", ", missing)}: the daemon cannot open /dev/kfd and /dev/dri";
        string hint = $"sudo usermod -aG {string.Join(',', missing)} halo && sudo systemctl restart halo-server";
        return context.Machine.HasAmdGpu ? Fail(finding, hint) : Warn(finding, hint);
    }
}
