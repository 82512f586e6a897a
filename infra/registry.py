"""ECR repositories and the two images, built for linux/arm64 and pushed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

PLATFORM = docker_build.Platform.LINUX_ARM64
CACHE_TAG = "buildcache"

# Untagged images are the ones a newer push replaced (the digest a Deployment
# pins moves on the same `pulumi up`), so they can go after a week; the cache
# manifest and `latest` are tagged and kept.
LIFECYCLE_POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "Expire images replaced more than 7 days ago",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 7,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": "Keep at most 20 images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 20},
            "action": {"type": "expire"},
        },
    ]
}


@dataclass(frozen=True)
class ImageSpec:
    """One image: its short name and Dockerfile, built from the shared context."""

    name: str
    dockerfile: str


DEFAULT_IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec("echo", "services/echo/Dockerfile"),
    ImageSpec("provisioner", "services/provisioner/Dockerfile"),
)


@dataclass
class RegistryArgs:
    # Relative to the project directory (the CLI's working directory), so the
    # state does not record a path that differs between machines.
    context: str = "."
    images: Sequence[ImageSpec] = field(default_factory=lambda: DEFAULT_IMAGES)


class Registry(pulumi.ComponentResource):
    """One ECR repository per image, and the images built and pushed to them.

    ``refs[name]`` is docker-build's ``ref``, the pushed tag pinned to the
    build's digest (``<repository url>:latest@sha256:...``), which Kubernetes
    objects must use: a tag can move, a digest cannot (with both, the
    container runtime pulls by the digest).

    Images are built on ``pulumi up`` only. docker-build builds on preview by
    default and then exports the build cache to the registry, which needs
    push rights: a preview that changes nothing could not run as a read-only
    role. What a preview no longer shows is whether the Dockerfiles build; the
    test suite lints them (hadolint) and every deploy builds them before any
    Kubernetes object points at the new digest. docker-build still parses the
    Dockerfiles on preview.
    """

    refs: dict[str, pulumi.Output[str]]
    repository_urls: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pingpod:registry:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.refs = {}
        self.repository_urls = {}
        for spec in args.images:
            repo = aws.ecr.Repository(
                f"{name}-{spec.name}-repo",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                    scan_on_push=True
                ),
                # `latest` and the cache tag are rewritten by every build.
                image_tag_mutability="MUTABLE",
                encryption_configurations=[
                    aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")
                ],
                # `pulumi destroy` must not stop at a repository that holds images.
                force_delete=True,
                opts=child,
            )
            aws.ecr.LifecyclePolicy(
                f"{name}-{spec.name}-lifecycle",
                repository=repo.name,
                policy=json.dumps(LIFECYCLE_POLICY),
                opts=child,
            )
            auth = aws.ecr.get_authorization_token_output(registry_id=repo.registry_id)
            cache_ref = repo.repository_url.apply(lambda url: f"{url}:{CACHE_TAG}")
            image = docker_build.Image(
                f"{name}-{spec.name}-image",
                context=docker_build.BuildContextArgs(location=args.context),
                dockerfile=docker_build.DockerfileArgs(location=spec.dockerfile),
                platforms=[PLATFORM],
                push=True,
                build_on_preview=False,
                tags=[repo.repository_url.apply(lambda url: f"{url}:latest")],
                registries=[
                    docker_build.RegistryArgs(
                        address=repo.repository_url.apply(lambda url: url.split("/", 1)[0]),
                        username=auth.user_name,
                        password=pulumi.Output.secret(auth.password),
                    )
                ],
                cache_from=[
                    docker_build.CacheFromArgs(
                        registry=docker_build.CacheFromRegistryArgs(ref=cache_ref)
                    )
                ],
                cache_to=[
                    docker_build.CacheToArgs(
                        registry=docker_build.CacheToRegistryArgs(
                            ref=cache_ref,
                            # ECR accepts the cache only as an OCI image manifest.
                            image_manifest=True,
                            oci_media_types=True,
                            mode=docker_build.CacheMode.MAX,
                        )
                    )
                ],
                opts=child,
            )
            self.refs[spec.name] = image.ref
            self.repository_urls[spec.name] = repo.repository_url

        self.register_outputs({"refs": self.refs, "repository_urls": self.repository_urls})
