module druid.local/etcd-wrapper

go 1.26
