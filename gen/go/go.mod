// The Go stubs of issues.v1 (buf.gen.yaml; protoc-gen-go 1.28, protoc-gen-go-grpc 1.0). The
// module path is the prefix of the protos' go_package; CI vets the package against Debian's
// google.golang.org/protobuf 1.28.1 and google.golang.org/grpc 1.33.3, the floors below.
module github.com/issue-service/issue-service/gen/go

go 1.19

require (
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
