module druid.local/pause

go 1.26
