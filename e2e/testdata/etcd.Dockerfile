# An etcd node for the drills: Debian's etcd and etcdctl with the few shared
# libraries they load, on an empty base (the test fills rootfs/ from ldd).
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/bin:/bin ETCDCTL_API=3
ENTRYPOINT ["/usr/bin/etcd"]
