# The etcd of the example's stack: Debian's etcd and etcdctl with the few
# shared libraries they load, on an empty base (build-context.sh fills
# rootfs/ from this machine's etcd-server and etcd-client packages):
#
#   examples/postgres/build-context.sh /tmp/pg-context
#   docker build -t ccctl-postgres-etcd -f examples/postgres/etcd.Dockerfile /tmp/pg-context/etcd
#
# With a registry, an official etcd image (quay.io/coreos/etcd) does the
# same job.
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/bin ETCDCTL_API=3
VOLUME /data
EXPOSE 2379
ENTRYPOINT ["/usr/bin/etcd"]
CMD ["--name", "etcd", "--data-dir", "/data", "--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://etcd:2379"]
