// Package layout holds no code, only tests of the tree's layout rules that no
// one package can check about itself: the README's Layout section names every
// package, the docs' tables stay readable, which packages may import which,
// and no production function grows past one screen.
package layout
