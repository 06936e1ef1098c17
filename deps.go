package deps

import (
	_ "github.com/dop251/goja"
	_ "github.com/evanw/esbuild/pkg/api"
	_ "github.com/go-jose/go-jose/v4"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/redis/go-redis/v9"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/crypto/hkdf"
	_ "go.yaml.in/yaml/v3"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/google/uuid"
	_ "golang.org/x/term"
)
