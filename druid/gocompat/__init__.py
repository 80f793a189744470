"""Go compatibility: Python stand-ins for the Go library behaviour etcd-druid's output depends on.

Everything druid writes where etcd-druid's Go code decides the exact text (flags on a command line, YAML in a
ConfigMap, error messages, durations and quantities in specs) goes through one of these modules, and each
public function's docstring names the Go behaviour it mirrors:

- ``duration``: ``time.ParseDuration`` and ``time.Duration.String()`` (``metav1.Duration`` on the wire),
  apimachinery's ``duration.HumanDuration`` (kubectl's ages).
- ``quantity``: ``resource.ParseQuantity``, ``Quantity.Value`` / ``MilliValue``.
- ``goyaml``: ``sigs.k8s.io/yaml.Marshal``, ``encoding/json.Marshal`` and go-yaml v2's scalar typing.
- ``strconv``: ``strconv.ParseBool``, ``strconv.ParseInt(s, 10, 64)`` and ``strconv.FormatFloat(x, 'g', -1, 32)``.
- ``fmt``: ``fmt``'s ``%v`` of a ``map[string]string`` and of an error (an API error prints its Status message).
- ``net``: ``net.SplitHostPort`` (with a numeric port).

Nothing here knows about etcd; nothing here does I/O.
"""
