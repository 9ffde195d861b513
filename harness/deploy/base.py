"""The base stack (topology's region), deployed first: the ECR repository CI pushes the image to before any
app deploy, and the artifacts bucket templates over CloudFormation's inline size limit are uploaded to."""

from __future__ import annotations

from harness.deploy.context import RenderContext
from harness.deploy.template import Template, get_att, ref

REPOSITORY = "ImageRepository"
ARTIFACTS_BUCKET = "ArtifactsBucket"
ECR_KEEP_IMAGES = 50
ARTIFACT_DAYS = 30


def render_base(ctx: RenderContext) -> Template:
    names = ctx.names
    t = Template(
        description=f"{names.base_stack}: image repository and deploy artifacts of {names.app_stack}"
    )
    t.add(
        REPOSITORY,
        "AWS::ECR::Repository",
        {
            "RepositoryName": names.repository,
            # Tags are git SHAs pushed once: a rollback redeploys an old tag, never a rewritten one.
            "ImageTagMutability": "IMMUTABLE",
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "EncryptionConfiguration": {"EncryptionType": "AES256"},
            "LifecyclePolicy": {
                "LifecyclePolicyText": (
                    '{"rules": [{"rulePriority": 1, "description": "keep the last '
                    f'{ECR_KEEP_IMAGES} images", "selection": {{"tagStatus": "any", '
                    f'"countType": "imageCountMoreThan", "countNumber": {ECR_KEEP_IMAGES}}}, '
                    '"action": {"type": "expire"}}]}'
                )
            },
            "Tags": ctx.tags("compute"),
        },
        deletion_policy="Retain",
    )
    t.add(
        ARTIFACTS_BUCKET,
        "AWS::S3::Bucket",
        {
            "BucketName": names.artifacts_bucket,
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "expire-old-templates",
                        "Status": "Enabled",
                        "ExpirationInDays": ARTIFACT_DAYS,
                        "NoncurrentVersionExpiration": {"NoncurrentDays": ARTIFACT_DAYS},
                    }
                ]
            },
            "Tags": ctx.tags("deploy"),
        },
        deletion_policy="Retain",
    )
    t.output("ImageRepositoryUri", get_att(REPOSITORY, "RepositoryUri"), "ECR repository of the app image")
    t.output("ImageRepositoryName", ref(REPOSITORY), "ECR repository name")
    t.output("ArtifactsBucketName", ref(ARTIFACTS_BUCKET), "templates uploaded by the deploy")
    return t
