#!/bin/sh
echo "${owner}"
