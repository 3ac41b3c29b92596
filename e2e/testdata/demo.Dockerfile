# The drills' demo image: ccctl as the entrypoint, Debian's static busybox for
# /bin/sh (shell hooks), and the demo helper as service and hook command.
ARG BASE
FROM ${BASE}
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/timeline", "/etc/ccctl"]
RUN ["/bin/busybox", "chmod", "1777", "/tmp"]
COPY demo /usr/local/bin/demo
COPY ccctl.yaml /etc/ccctl/ccctl.yaml
ENV CCCTL_CONFIG=/etc/ccctl/ccctl.yaml
ENTRYPOINT ["ccctl", "run", "--"]
CMD ["demo", "serve"]
