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
IMAGES_AS_ROOT := $(if $(filter 0,$(shell id -u)),,sudo)

TEST_TARGETS += test-images

.PHONY: image-tools images test-images

image-tools:
	@missing=$$(for p in $(IMAGE_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		$(IMAGES_AS_ROOT) apt-get update -q && \
		$(IMAGES_AS_ROOT) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

images: venv image-tools
	$(BIN)/python -m scripts.images build

test-images: venv image-tools
	$(BIN)/pytest tests/images
