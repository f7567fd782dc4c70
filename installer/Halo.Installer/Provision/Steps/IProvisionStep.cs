namespace Halo.Installer.Provision.Steps;

/// <summary>
/// One idempotent step: <see cref="PlanAsync"/> looks at the machine and returns the changes still needed
/// (none when it is already in place), so that planning twice after an apply yields an empty plan.
/// </summary>
public interface IProvisionStep
{
    Task<ProvisionStep> PlanAsync(ProvisionContext context, CancellationToken cancellationToken);
}
