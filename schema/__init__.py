"""The GraphQL surface of Roost: types, inputs, enums, scalars and the Schema object."""
