# Container images of echo and provisioner, built from their unchanged Dockerfiles with
# buildah (no Docker engine, no registry), plus the pod sandbox (pause) image. Stand-in
# bases are made here from packages; everything is cached under ~/.cache/pingpod/images
# by a hash of its inputs (docs/images.md).
#   image-tools  Debian's buildah, podman (the tests run the images with it), runc,
#                mmdebstrap, gcc with static glibc; apt-get only for what is missing
#   images       build what the cache lacks; the last lines are `image echo=REF` and
#                `image provisioner=REF`
#   test-images  pytest tests/images: the images run with podman on 127.0.0.1
# Also needs, as the machine provides them: npm (fetches Node.js 20 from the npm
# registry) and Go (the pause source comes from the Kubernetes module).

IMAGE_PACKAGES := buildah podman runc mmdebstrap gcc libc6-dev binutils

TEST_TARGETS += test-images

.PHONY: image-tools images test-images

image-tools:
	$(call apt-install,$(IMAGE_PACKAGES))

images: venv image-tools
	$(BIN)/python -m scripts.images build

test-images: venv image-tools
	$(BIN)/pytest tests/images
